"""The ``results/{dataset}/{scene}`` layout of a trained scene: the stage files the interactive
tools and the trained-scene loader need, and the rule that makes each.

A missing file is reported together with its rule (:class:`MissingStageError`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

# Stage files under results/{dataset}/{scene}, and the rule that makes each.
STAGE_FILES = {
    "cameras": ("poses/cameras.json", "prepare_poses"),
    "nerf": ("nerf/model.pt", "train_nerf"),
    "field": ("imitation/{variant}/field.pt", "train_imitation"),
    "mesh": ("mesh/mesh_normalized.ply", "extract_mesh"),
}


class MissingStageError(FileNotFoundError):
    """A stage output the segmentation needs is absent; the message names the file and its rule."""


def stage_path(scene_dir: str | os.PathLike, stage: str, variant: str = "full") -> Path:
    """Path of a stage file (:data:`STAGE_FILES`) in a scene folder."""
    return Path(scene_dir) / STAGE_FILES[stage][0].format(variant=variant)


def require_stages(scene_dir: str | os.PathLike, stages: Sequence[str], variant: str = "full") -> dict[str, Path]:
    """``{stage: path}``; raises :class:`MissingStageError` naming every missing file and its rule."""
    paths = {s: stage_path(scene_dir, s, variant) for s in stages}
    missing = [f"{p} (made by rule {STAGE_FILES[s][1]})" for s, p in paths.items() if not p.is_file()]
    if missing:
        raise MissingStageError(f"{scene_dir}: missing stage output(s):\n    " + "\n    ".join(missing))
    return paths
