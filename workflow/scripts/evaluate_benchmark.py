"""Adapter for rule evaluate_benchmark -> san.pipeline.evaluate_benchmark.evaluate_benchmark."""

from san.pipeline.adapter import run_rule
from san.pipeline.evaluate_benchmark import evaluate_benchmark, scene_dir_of


def main(settings):
    i, o, w = snakemake.input, snakemake.output, snakemake.wildcards
    evaluate_benchmark(
        scene_dir_of(i.cameras),
        i.layout,
        o.metrics,
        o.views,
        o.figure,
        w.dataset,
        w.scene,
        w.variant,
        settings.teacher,
        settings.benchmark,
        device=settings.device,
    )


run_rule(snakemake, main)
