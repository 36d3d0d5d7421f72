"""Building the HDF5 feature cache (:mod:`san.features.cache`): render views with the frozen NeRF,
encode them with the teacher, write them (:func:`cache_features`); rule ``cache_features``
(:mod:`san.pipeline.cache_features`) loads the inputs.

Views: every training camera (rendered at its own aspect ratio, scaled so that its longest side
is ``render_size``), then ``num_augmented`` interpolated square cameras
(:func:`san.features.augment.sample_augmented_cameras`). Training cameras are rendered as pinhole
cameras (their lens distortion is dropped): the cache only needs each rendering to match its
stored ``K``. The teacher sees the NeRF's rendering quantised to uint8, exactly the ``rgb`` stored.

Rendering size: the teacher's preprocessing resizes the longest side to its input size (1024 for
SAM) whatever ``render_size`` is, so a smaller ``render_size`` renders faster but feeds the teacher
an upsampled, blurrier image; the paper renders at 512.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from san.cameras import Camera, PinholeLike
from san.features.augment import camera_at_size, sample_augmented_cameras
from san.features.cache import create_feature_cache
from san.features.config import CacheFeaturesConfig
from san.teachers.base import Teacher
from san.utils.device import synchronize
from san.utils.progress import Progress

log = logging.getLogger("san")

RenderFn = Callable[[Camera], torch.Tensor]
"""``render_fn(camera) -> HxWx3`` float in ``[0, 1]``: one unbatched :class:`~san.cameras.Camera`
(``c2w 4x4`` OpenCV camera-to-world in the normalised frame, ``K 3x3`` in pixels, float64)."""


@dataclass(frozen=True)
class _View:
    camera: Camera
    is_augmented: bool
    frame_index: int


def plan_views(train_cameras: Sequence[PinholeLike], config: CacheFeaturesConfig) -> list[_View]:
    """Training views first, then the augmented ones, in file order."""
    views = [_View(camera_at_size(Camera.of(c), config.render_size), False, i) for i, c in enumerate(train_cameras)]
    if config.num_augmented:
        train_c2w = np.stack([np.asarray(c.c2w, dtype=np.float64)[:4, :4] for c in train_cameras])
        rng = np.random.default_rng(config.seed)
        augmented = sample_augmented_cameras(train_c2w, config.num_augmented, rng, config.fov_range, config.render_size)
        views += [_View(c, True, -1) for c in augmented]
    return views


def _batches(views: list[_View], batch_size: int) -> list[list[int]]:
    """Consecutive view indices with one image size per batch, at most ``batch_size`` each."""
    batches: list[list[int]] = []
    for i, v in enumerate(views):
        size = (v.camera.width, v.camera.height)
        if (
            batches
            and len(batches[-1]) < batch_size
            and (views[batches[-1][0]].camera.width, views[batches[-1][0]].camera.height) == size
        ):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _render(render_fn: RenderFn, camera: Camera, where: str) -> np.ndarray:
    with torch.no_grad():
        image = render_fn(camera)
    image = torch.as_tensor(image).detach().float().cpu()
    if image.shape != (camera.height, camera.width, 3):
        raise ValueError(
            f"{where}: render_fn returned shape {tuple(image.shape)}, expected ({camera.height}, {camera.width}, 3)"
        )
    if not torch.isfinite(image).all():
        raise ValueError(f"{where}: render_fn returned NaN/inf values")
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def cache_features(
    render_fn: RenderFn,
    train_cameras: Sequence[PinholeLike],
    out_path: str | os.PathLike,
    teacher: Teacher,
    config: CacheFeaturesConfig,
    nerf_digest: str,
) -> Path:
    """Render, encode and store every view (see the module docstring) in ``out_path``.

    Args:
        render_fn: :data:`RenderFn`, ``render_fn(camera) -> HxWx3`` float in ``[0, 1]`` for one
            unbatched :class:`~san.cameras.Camera` (numpy float64; :meth:`~san.cameras.Camera.tensors`
            puts it on the model's device)
        train_cameras: the training cameras (``Frame`` or :class:`~san.cameras.Camera`), at least one.
        out_path: the ``.h5`` file, written atomically.
        teacher: encodes on its own device.
        config: :class:`CacheFeaturesConfig`.
        nerf_digest: SHA-256 of the NeRF ``model.pt`` behind ``render_fn``.

    Returns:
        ``out_path``.
    """
    out_path = Path(out_path)
    if not train_cameras:
        raise ValueError(f"{out_path}: cache_features needs at least one training camera")
    if teacher.info.untrained and "untrained" not in out_path.name:
        log.warning("%s: teacher %s is untrained but the file name does not say so", out_path, teacher.info.name)
    views = plan_views(train_cameras, config)
    settings = dict(dataclasses.asdict(config), num_train=len(train_cameras), teacher_batch_size=teacher.batch_size)
    progress = Progress(len(views), every=max(1, len(views) // 20), min_seconds=10.0, name="cache_features")
    render_s = encode_s = 0.0
    t0 = time.perf_counter()
    with create_feature_cache(
        out_path, len(views), config.render_size, teacher.info, nerf_digest, config.compression, settings
    ) as writer:
        for batch in _batches(views, config.batch_size):
            t = time.perf_counter()
            images = [_render(render_fn, views[i].camera, f"{out_path}: view {i}") for i in batch]
            render_s += time.perf_counter() - t
            t = time.perf_counter()
            x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)
            maps = teacher.encode(x)
            synchronize(teacher.device)
            maps = [m.to("cpu", torch.float16).numpy() for m in maps]
            encode_s += time.perf_counter() - t
            for k, i in enumerate(batch):
                v = views[i]
                writer.write(
                    i, images[k], v.camera.c2w, v.camera.K, [m[k] for m in maps], v.is_augmented, v.frame_index
                )
            progress.update(
                batch[-1], render_s_per_view=render_s / (batch[-1] + 1), encode_s_per_view=encode_s / (batch[-1] + 1)
            )
        timing = {
            "views": len(views),
            "render_s_per_view": render_s / len(views),
            "encode_s_per_view": encode_s / len(views),
            "total_s": time.perf_counter() - t0,
            "teacher_device": str(teacher.device),
        }
        writer.set_json_attr("timing", timing)
    log.info(
        "%s: %d views (%d train, %d augmented), render %.3f s/view, encode %.3f s/view",
        out_path,
        len(views),
        len(train_cameras),
        config.num_augmented,
        timing["render_s_per_view"],
        timing["encode_s_per_view"],
    )
    return out_path


def nerf_render_fn(model) -> RenderFn:
    """A :data:`RenderFn` over a :class:`~san.models.nerf.NeRFModel` (RGB only, model's device)."""

    def render(camera: Camera) -> torch.Tensor:
        return model.render_camera(camera)["rgb"].clamp(0, 1)

    return render
