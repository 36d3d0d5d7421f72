"""Adapter for rule render_benchmark_views -> san.pipeline.render_benchmark_views.render_benchmark_views."""

from san.pipeline.adapter import run_rule
from san.pipeline.render_benchmark_views import render_benchmark_views


def main(settings):
    i = snakemake.input
    render_benchmark_views(
        cameras=i.cameras,
        model=i.model,
        layout_dir=i.layout,
        out_path=snakemake.output.renders,
        config=settings.benchmark,
        device=settings.device,
    )


run_rule(snakemake, main)
