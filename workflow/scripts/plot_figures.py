"""Adapter for rule plot_figures -> san.pipeline.report.plot_figures."""

from san.pipeline.adapter import run_rule
from san.pipeline.report import plot_figures


def main(settings):
    plot_figures(
        snakemake.input.metrics,
        snakemake.input.curves,
        snakemake.output.iou,
        snakemake.output.timing,
        snakemake.output.qualitative,
        snakemake.output.curves,
        qualitative_files=snakemake.input.qualitative,
        config=settings.report,
        benchmark_files=snakemake.input.benchmark,
    )


run_rule(snakemake, main)
