"""Adapter for rule train_nerf -> san.pipeline.train_nerf.train_nerf."""

from san.pipeline.adapter import run_rule
from san.pipeline.train_nerf import train_nerf


def main(settings):
    o = snakemake.output
    train_nerf(
        snakemake.input.cameras,
        model=o.model,
        metrics=o.metrics,
        curve=o.curve,
        config=settings.nerf,
        device=settings.device,
    )


run_rule(snakemake, main)
