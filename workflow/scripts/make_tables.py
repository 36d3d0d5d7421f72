"""Adapter for rule make_tables -> san.pipeline.report.make_tables."""

from pathlib import Path

from san.pipeline.adapter import run_rule
from san.pipeline.report import make_tables


def main(settings):
    make_tables(
        snakemake.input.metrics,
        Path(snakemake.output[0]).parent,
        settings.report,
        benchmark_files=snakemake.input.benchmark,
    )


run_rule(snakemake, main)
