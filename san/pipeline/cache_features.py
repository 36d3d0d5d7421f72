"""Rule ``cache_features``: render views with the frozen NeRF, encode them with the teacher, store
everything in the HDF5 feature cache (:mod:`san.features.cache`); the views and the writer are
:mod:`san.features.build`'s.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from san.features import build
from san.features.config import CacheFeaturesConfig

log = logging.getLogger("san")


def cache_features(
    model_path: str | os.PathLike,
    cameras_json: str | os.PathLike,
    out_path: str | os.PathLike,
    teacher_config,
    config: CacheFeaturesConfig,
    device: str = "auto",
) -> Path:
    """Rule ``cache_features``: load the scene, the NeRF and the teacher
    (:func:`san.trained_scene.load_trained`), then :func:`san.features.build.cache_features`.

    The teacher (and its checkpoint: missing, corrupt or of the wrong architecture) is built first,
    so a bad checkpoint fails in seconds, before any rendering.
    """
    from san.trained_scene import load_trained
    from san.utils.io import sha256_file

    trained = load_trained(cameras_json, model_path, teacher=teacher_config, device=device)
    scene, teacher, model = trained.scene, trained.teacher, trained.nerf
    log.info(
        "cache_features: teacher %s%s on %s, NeRF %s",
        teacher.info.name,
        " (UNTRAINED)" if teacher.info.untrained else "",
        teacher.device,
        model_path,
    )
    return build.cache_features(
        build.nerf_render_fn(model), scene.train_frames, out_path, teacher, config, sha256_file(model_path)
    )
