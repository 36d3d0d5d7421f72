"""Adapter for rule make_demo_scene -> san.pipeline.make_demo_scene.make_demo_scene."""

from pathlib import Path

from san.pipeline.adapter import run_rule
from san.pipeline.make_demo_scene import make_demo_scene


def main(settings):
    make_demo_scene(
        snakemake.output.folder,
        settings.demo_scene,
        benchmark_dir=snakemake.output.benchmark,
        test_every=settings.poses.test_every,
    )
    Path(snakemake.output.marker).write_text("done\n")


run_rule(snakemake, main)
