"""Adapter for rule train_nerf -> san.pipeline.train_nerf.train_nerf."""

from pathlib import Path

from san.pipeline.adapter import run_rule
from san.pipeline.train_nerf import train_nerf


def main(settings):
    train_nerf(snakemake.input.cameras, Path(snakemake.output.model).parent, settings.nerf, device=settings.device)


run_rule(snakemake, main)
