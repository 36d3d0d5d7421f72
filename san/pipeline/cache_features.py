"""Rule ``cache_features``: render views with the frozen NeRF, encode them with the teacher, store
everything in the HDF5 feature cache (:mod:`san.features.cache`); the views and the writer are
:mod:`san.features.build`'s.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from san.features.build import CacheFeaturesConfig, cache_features, nerf_render_fn

log = logging.getLogger("san")


def cache_features_stage(
    model_path: str | os.PathLike,
    cameras_json: str | os.PathLike,
    out_path: str | os.PathLike,
    teacher_config,
    config: CacheFeaturesConfig,
    device: str = "auto",
) -> Path:
    """Rule ``cache_features``: load the scene, the NeRF and the teacher, then :func:`cache_features`.

    The teacher (and its checkpoint: missing, corrupt or of the wrong architecture) is built first,
    so a bad checkpoint fails in seconds, before any rendering.
    """
    from san.data.scene import load_scene
    from san.models.nerf import load_nerf
    from san.teachers import teacher_from_config
    from san.utils.io import sha256_file

    scene = load_scene(cameras_json)
    teacher = teacher_from_config(teacher_config, device)
    model = load_nerf(model_path, device)
    log.info("cache_features: teacher %s%s on %s, NeRF %s", teacher.info.name, " (UNTRAINED)" if teacher.info.untrained else "", teacher.device, model_path)
    return cache_features(nerf_render_fn(model), scene.train_frames, out_path, teacher, config, sha256_file(model_path))
