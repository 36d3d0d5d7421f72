"""Adapter for rule time_teacher -> san.pipeline.time_teacher.time_teacher."""

from san.pipeline.adapter import run_rule
from san.pipeline.time_teacher import time_teacher


def main(settings):
    i, w = snakemake.input, snakemake.wildcards
    time_teacher(
        i.cameras,
        snakemake.output.timing,
        w.dataset,
        w.scene,
        settings.teacher,
        settings.evaluation,
        device=settings.device,
    )


run_rule(snakemake, main)
