"""Adapter for rule make_tables -> san.pipeline.report.make_tables."""

from san.pipeline.adapter import run_rule
from san.pipeline.report import make_tables


def main(settings):
    make_tables(
        snakemake.input.metrics,
        dict(snakemake.output.items()),
        settings.report,
        benchmark_files=snakemake.input.benchmark,
        teacher_benchmark_files=snakemake.input.teacher_benchmark,
    )


run_rule(snakemake, main)
