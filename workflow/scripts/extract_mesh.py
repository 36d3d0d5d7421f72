"""Adapter for rule extract_mesh -> san.pipeline.extract_mesh.extract_mesh."""

from san.pipeline.adapter import run_rule
from san.pipeline.extract_mesh import extract_mesh


def main(settings):
    extract_mesh(
        snakemake.input.model,
        snakemake.input.cameras,
        dict(snakemake.output.items()),  # the declared outputs by name (MeshFiles.from_outputs)
        settings.mesh,
        device=settings.device,
        ground_truth=snakemake.params.ground_truth,
    )


run_rule(snakemake, main)
