"""Adapter for rule cache_features -> san.pipeline.cache_features.cache_features."""

from san.pipeline.adapter import run_rule
from san.pipeline.cache_features import cache_features


def main(settings):
    cache_features(
        snakemake.input.model,
        snakemake.input.cameras,
        snakemake.output.cache,
        settings.teacher,
        settings.features,
        device=settings.device,
    )


run_rule(snakemake, main)
