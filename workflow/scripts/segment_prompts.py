"""Adapter for rule segment_prompts -> san.pipeline.segment.segment_prompts."""

from pathlib import Path

from san.pipeline.adapter import run_rule
from san.pipeline.segment import segment_prompts


def main(settings):
    w = snakemake.wildcards
    segment_prompts(
        snakemake.input.prompts,
        f"{w.dataset}/{w.scene}",
        Path(snakemake.input.cameras).parent.parent,
        Path(snakemake.output.summary).parent,
        variant=w.variant,
        export_mesh=settings.segment.export_mesh,
        views_for_mesh=settings.segment.views_for_mesh,
        teacher=settings.teacher,
        device=settings.device,
        close_holes=settings.mesh.close_holes,
        max_hole_fraction=settings.mesh.max_hole_fraction,
    )


run_rule(snakemake, main)
