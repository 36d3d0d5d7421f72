"""Adapter for rule prepare_poses -> san.pipeline.prepare_poses.prepare_poses."""

from pathlib import Path

from san.pipeline.adapter import run_rule
from san.pipeline.prepare_poses import prepare_poses
from san.teachers.preflight import check_teacher


def main(settings):
    check_teacher(settings.teacher, memo_dir=Path(settings.results) / ".teacher_checks")  # before the NeRF trains
    row = snakemake.params.row
    demo = row["format"] == "demo"
    source = Path(snakemake.input.source).with_suffix("") if demo else Path(snakemake.input.source)
    prepare_poses(
        source,
        snakemake.output.cameras,
        format="colmap" if demo else row["format"],
        kind=row.get("kind") or None,
        config=settings.poses,
        colmap_model=row.get("colmap_model") or None,
    )


run_rule(snakemake, main)
