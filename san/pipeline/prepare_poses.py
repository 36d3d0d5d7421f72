"""Rule ``prepare_poses``: a capture folder -> ``results/{dataset}/{scene}/poses/cameras.json``.

All validation (poses, intrinsics, every image's header) happens in
:func:`san.data.prepare.prepare_scene` before anything is written; the file is written atomically.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from san.data.config import PreparePosesConfig
from san.data.prepare import prepare_scene
from san.data.scene import Scene, save_scene

log = logging.getLogger("san")


def prepare_poses(
    path: str | os.PathLike,
    out_json: str | os.PathLike,
    format: str = "auto",
    kind: str | None = None,
    config: PreparePosesConfig = PreparePosesConfig(),
    colmap_model: str | None = None,
) -> Scene:
    """Prepare the scene at ``path`` and write it to ``out_json`` (see :func:`prepare_scene`).

    Args:
        path: the capture folder.
        out_json: the ``cameras.json`` to write.
        format: ``"auto"`` or a format name from the scene sheet.
        kind: ``None`` or ``forward_facing`` / ``unbounded`` from the scene sheet.
        config: the ``prepare_poses`` config section.
        colmap_model: the scene sheet's ``colmap_model`` (``"sparse/1"``) or ``None``.

    Returns:
        The written :class:`Scene`.
    """
    scene = prepare_scene(path, format=format, kind=kind, config=config, colmap_model=colmap_model)
    save_scene(scene, Path(out_json))
    log.info(
        "prepare_poses: %s (%s, %s): %d train / %d test frames, near %.4g far %.4g, %d skipped -> %s",
        path,
        scene.source["format"],
        scene.scene_kind,
        len(scene.train_frames),
        len(scene.test_frames),
        scene.near,
        scene.far,
        scene.source["skipped_frames"],
        out_json,
    )
    return scene
