"""Adapter for rule segment_prompts -> san.pipeline.segment.segment_prompts."""

from san.pipeline.adapter import run_rule
from san.pipeline.segment import segment_prompts


def main(settings):
    i, w = snakemake.input, snakemake.wildcards
    segment_prompts(
        i.prompts,
        f"{w.dataset}/{w.scene}",
        cameras=i.cameras,
        model=i.model,
        field=i.field,
        mesh=i.mesh,
        summary=snakemake.output.summary,
        export_mesh=settings.segment.export_mesh,
        views_for_mesh=settings.segment.views_for_mesh,
        teacher=settings.teacher,
        device=settings.device,
        close_holes=settings.mesh.close_holes,
        max_hole_fraction=settings.mesh.max_hole_fraction,
    )


run_rule(snakemake, main)
