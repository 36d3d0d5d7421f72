"""Adapter for rule train_imitation -> san.pipeline.train_imitation.train_imitation."""

from san.pipeline.adapter import run_rule
from san.pipeline.train_imitation import train_imitation


def main(settings):
    i, o = snakemake.input, snakemake.output
    mesh = [i.mesh] if isinstance(i.mesh, str) else list(i.mesh)  # only the mesh variant has one
    train_imitation(
        i.model,
        i.cameras,
        i.cache,
        field=o.field,
        curve=o.curve,
        stats=o.stats,
        config=settings.imitation,
        variant=snakemake.wildcards.variant,
        teacher_config=settings.teacher,
        mesh_path=mesh[0] if mesh else None,
        device=settings.device,
        seed=settings.seed,
    )


run_rule(snakemake, main)
