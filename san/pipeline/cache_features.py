"""Rule ``cache_features``: render views with the frozen NeRF, encode them with the teacher, store
everything in the HDF5 feature cache (:mod:`san.features.cache`).

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
from typing import Callable, Protocol, Sequence

import numpy as np
import torch

from san.features.augment import CameraSpec, camera_at_size, sample_augmented_cameras
from san.features.cache import COMPRESSIONS, create_feature_cache
from san.teachers.base import Teacher
from san.utils.device import synchronize
from san.utils.progress import Progress

log = logging.getLogger("san")

RenderFn = Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]
"""``render_fn(c2w 4x4, K 3x3, width, height) -> HxWx3`` float in ``[0, 1]`` (CPU float32 inputs)."""


class CameraLike(Protocol):
    """Anything with a pinhole camera: :class:`san.data.scene.Frame`, :class:`CameraSpec`."""

    c2w: np.ndarray
    K: np.ndarray
    width: int
    height: int


@dataclass(frozen=True)
class CacheFeaturesConfig:
    """``features:`` section of ``config.yaml``.

    Attributes:
        num_augmented: interpolated cameras added to the training views.
        render_size: side of augmented (square) views and longest side of training views, pixels.
        fov_range: ``(low, high)`` vertical field of view of augmented views, degrees.
        batch_size: views rendered, then encoded together, per step.
        seed: seed of the camera augmentation.
        compression: HDF5 compression of renderings and features, ``lzf | gzip | none``.
    """

    num_augmented: int = 100
    render_size: int = 512
    fov_range: tuple[float, float] = (50.0, 70.0)
    batch_size: int = 4
    seed: int = 0
    compression: str = "lzf"

    def __post_init__(self) -> None:
        if self.num_augmented < 0:
            raise ValueError(f"features.num_augmented must be >= 0, got {self.num_augmented}")
        if self.render_size < 16:
            raise ValueError(f"features.render_size must be >= 16, got {self.render_size}")
        if self.batch_size < 1:
            raise ValueError(f"features.batch_size must be >= 1, got {self.batch_size}")
        if not 0 < self.fov_range[0] <= self.fov_range[1] < 180:
            raise ValueError(f"features.fov_range must satisfy 0 < low <= high < 180, got {self.fov_range}")
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"features.compression {self.compression!r} is not one of {COMPRESSIONS}")


@dataclass(frozen=True)
class _View:
    camera: CameraSpec
    is_augmented: bool
    frame_index: int


def plan_views(train_cameras: Sequence[CameraLike], config: CacheFeaturesConfig) -> list[_View]:
    """Training views first, then the augmented ones, in file order."""
    views = [
        _View(camera_at_size(CameraSpec(c.c2w, c.K, c.width, c.height), config.render_size), False, i)
        for i, c in enumerate(train_cameras)
    ]
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


def _render(render_fn: RenderFn, camera: CameraSpec, where: str) -> np.ndarray:
    c2w = torch.as_tensor(camera.c2w, dtype=torch.float32)
    K = torch.as_tensor(camera.K, dtype=torch.float32)
    with torch.no_grad():
        image = render_fn(c2w, K, camera.width, camera.height)
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
    train_cameras: Sequence[CameraLike],
    out_path: str | os.PathLike,
    teacher: Teacher,
    config: CacheFeaturesConfig,
    nerf_digest: str,
) -> Path:
    """Render, encode and store every view (see the module docstring) in ``out_path``.

    Args:
        render_fn: ``render_fn(c2w 4x4, K 3x3, width, height) -> HxWx3`` float in ``[0, 1]``;
            inputs are CPU float32 tensors (move them to the model's device inside).
        train_cameras: the training cameras (``Frame`` or :class:`CameraSpec`), at least one.
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

    def render(c2w: torch.Tensor, K: torch.Tensor, width: int, height: int) -> torch.Tensor:
        return model.render_camera(c2w, K, width, height)["rgb"].clamp(0, 1)

    return render


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
    log.info(
        "cache_features: teacher %s%s on %s, NeRF %s",
        teacher.info.name,
        " (UNTRAINED)" if teacher.info.untrained else "",
        teacher.device,
        model_path,
    )
    return cache_features(nerf_render_fn(model), scene.train_frames, out_path, teacher, config, sha256_file(model_path))
