"""Adapter for rule make_cost_table -> san.pipeline.report.make_cost_table."""

from san.pipeline.adapter import run_rule
from san.pipeline.report import make_cost_table


def main(settings):
    out = snakemake.output
    make_cost_table(
        snakemake.input.benchmarks,
        log_files=snakemake.params.logs,
        csv=out.csv,
        md=out.md,
        tex=out.tex,
        figure=out.figure,
        config=settings.report,
    )


run_rule(snakemake, main)
