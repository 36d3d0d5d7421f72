"""Adapter for rule train_imitation -> san.pipeline.train_imitation.train_imitation."""

from pathlib import Path

from san.pipeline.adapter import run_rule
from san.pipeline.train_imitation import train_imitation


def main(settings):
    i = snakemake.input
    mesh = [i.mesh] if isinstance(i.mesh, str) else list(i.mesh)  # only the mesh variant has one
    train_imitation(
        i.model,
        i.cameras,
        i.cache,
        Path(snakemake.output.field).parent,
        settings.imitation,
        snakemake.wildcards.variant,
        settings.teacher,
        mesh_path=mesh[0] if mesh else None,
        device=settings.device,
        seed=settings.seed,
    )


run_rule(snakemake, main)
