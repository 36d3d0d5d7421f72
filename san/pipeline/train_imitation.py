"""Rule ``train_imitation``: learn the semantic feature field that imitates the teacher's backbone.

Inputs: the frozen NeRF (``nerf/model.pt``), the scene (``poses/cameras.json``), the HDF5 feature
cache (``features/{teacher}.h5``) and, for the ``mesh`` variant, ``mesh/mesh_normalized.ply``.
Outputs in ``results/{dataset}/{scene}/imitation/{variant}/``:

* ``training_curve.csv``: ``step, loss, mse, corr, cosine, lr, teacher_calls, fresh_views,
  wall_s`` every ``log_every`` steps (loss terms averaged over those steps);
* ``train_stats.json``: teacher calls made (and per step), fresh views, cached draws, steps, wall
  seconds of the training steps (and the part spent in the teacher, in fresh renderings, in ray
  geometry; ``stage_wall_s`` for this run of the stage, quality views included), the variant's
  settings, the teacher (name, ``untrained`` flag, checkpoint digest), the config, and ``quality``:
  cosine / MSE against the teacher on ``eval_views`` held-out (test) and training views, before
  and after training (:mod:`san.imitation.quality`);
* ``field.pt``: the semantic field, heads and their config (:func:`san.imitation.model.save_imitation`),
  written last and atomically: its presence means the stage finished;
* ``checkpoints/step_*.ckpt`` while training (removed at the end). A checkpoint is only resumed
  when its fingerprint (config, variant, seed, teacher, NeRF and cache digests) matches; otherwise it
  is reported and ignored.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from san.cameras import Camera
from san.config import to_dict
from san.features.augment import camera_at_size
from san.imitation.config import TrainImitationConfig, VariantConfig, variant_config
from san.imitation.model import save_imitation
from san.imitation.quality import evenly_spaced, feature_quality, summarize, teacher_views
from san.imitation.trainer import CURVE_COLUMNS, ImitationTrainer, make_trainer
from san.models.base import RadianceModel
from san.teachers import TeacherConfig
from san.teachers.base import Teacher, TeacherInfo
from san.utils.device import resolve_device
from san.utils.io import atomic_write_json, sha256_file
from san.utils.training import write_curve_csv

if TYPE_CHECKING:
    from san.features.cache import FeatureCache

log = logging.getLogger("san")


def _cameras(frames: Sequence[Any]) -> list[Camera]:
    return [Camera.of(f) for f in frames]


def teacher_provenance(info: TeacherInfo) -> dict[str, Any]:
    """What ``train_stats.json`` and ``field.pt`` record of the teacher (read back by
    :func:`san.trained_scene.recorded_teacher`)."""
    return {
        "name": info.name,
        "untrained": bool(info.untrained),
        "teacher_kind": info.kind,
        "teacher_label": info.label,
        "checkpoint": info.checkpoint,
        "checkpoint_sha256": info.checkpoint_sha256,
        "input_size": info.input_size,
        "feature_shapes": [list(s) for s in info.feature_shapes],
    }


def encode_quality_views(
    nerf: RadianceModel,
    teacher: Teacher,
    train_cams: Sequence[Camera],
    test_cams: Sequence[Camera],
    count: int,
    render_size: int,
) -> dict[str, list]:
    """Quality views (``count`` per split, evenly spaced): the NeRF's renderings of held-out and
    training cameras at ``render_size``, encoded once by the teacher; ``{}`` when ``count`` is 0."""
    if count <= 0:
        return {}
    t0 = time.perf_counter()
    test = [camera_at_size(c, render_size) for c in test_cams]
    pick_test = evenly_spaced(test, count)
    pick_train = evenly_spaced(train_cams, count)
    views = {
        "test": teacher_views(nerf, teacher, [test[i] for i in pick_test], [f"test/{i}" for i in pick_test]),
        "train": teacher_views(
            nerf,
            teacher,
            [camera_at_size(train_cams[i], render_size) for i in pick_train],
            [f"train/{i}" for i in pick_train],
        ),
    }
    log.info(
        "train_imitation: %d + %d quality views encoded in %.1f s (not counted as training teacher calls)",
        len(pick_test),
        len(pick_train),
        time.perf_counter() - t0,
    )
    return views


def write_outputs(
    trainer: ImitationTrainer,
    record: dict[str, Any],
    field_metadata: dict[str, Any],
    *,
    field: str | os.PathLike,
    curve: str | os.PathLike,
    stats: str | os.PathLike,
) -> None:
    """Write ``training_curve.csv``, ``train_stats.json`` and, last, ``field.pt`` (its presence
    means the stage finished)."""
    write_curve_csv(curve, trainer.curve, CURVE_COLUMNS)
    atomic_write_json(stats, record)
    save_imitation(trainer.model, field, field_metadata)


def run_imitation(
    nerf: RadianceModel,
    teacher: Teacher,
    train_frames: Sequence[Any],
    *,
    field: str | os.PathLike,
    curve: str | os.PathLike,
    stats: str | os.PathLike,
    config: TrainImitationConfig,
    variant: VariantConfig,
    cache: FeatureCache | None = None,
    mesh: tuple[torch.Tensor, torch.Tensor] | None = None,
    test_frames: Sequence[Any] = (),
    seed: int = 0,
    device: torch.device | str = "cpu",
    fingerprint: dict | None = None,
    metadata: dict | None = None,
) -> dict[str, Any]:
    """Train and write the stage's outputs (module docstring) from already loaded objects.

    Args:
        nerf: frozen NeRF (:class:`san.models.nerf.NeRFModel` or anything with its contract).
        teacher: the teacher (``encode``, ``info``).
        train_frames: training cameras (``Frame`` or :class:`~san.cameras.Camera`).
        field, curve, stats: the outputs ``field.pt``, ``training_curve.csv``, ``train_stats.json``
            (``checkpoints/`` goes beside ``field``).
        config, variant: settings.
        cache: open :class:`san.features.cache.FeatureCache` seeding the FIFO (or ``None``).
        mesh: ``(vertices, faces)`` in the normalised frame (``mesh`` variant).
        test_frames: held-out cameras for the quality report.
        seed: seeds everything.
        device: training device.
        fingerprint: extra identity of the inputs (file digests) for checkpoint matching.
        metadata: extra fields stored in ``field.pt`` and ``train_stats.json``.

    Returns:
        The ``train_stats.json`` record.
    """
    t_stage = time.perf_counter()
    out_dir = Path(field).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    nerf.eval()
    if isinstance(nerf, torch.nn.Module):  # a stand-in model may have no parameters
        nerf.requires_grad_(False)
    train_cams = _cameras(train_frames)
    trainer = make_trainer(nerf, teacher, train_cams, config, variant, cache, mesh=mesh, seed=seed, device=device)
    info = teacher.info
    teacher_record = teacher_provenance(info)
    if info.untrained:
        log.warning(
            "train_imitation: teacher %s has random weights: its features (and this field) are meaningless", info.name
        )
    fp = json.dumps(
        {
            "config": to_dict(config),
            "variant": to_dict(variant),
            "seed": seed,
            "teacher": teacher_record,
            **(fingerprint or {}),
        },
        sort_keys=True,
        default=str,
    )
    ckpt_dir = out_dir / "checkpoints"

    render_size = trainer.render_size
    quality_views = encode_quality_views(
        nerf, teacher, train_cams, _cameras(test_frames), config.eval_views, render_size
    )

    extra = trainer.resume(ckpt_dir, fp)
    if extra is not None:
        before = extra.get("quality_before")
    elif quality_views:
        before = {k: feature_quality(nerf, trainer.model, v, mesh) for k, v in quality_views.items()}
    else:
        before = None
    log.info(
        "train_imitation: variant %s (augment %s, fresh_fraction %.2f, mesh_surface %s, correlation %s), %d maps %s, "
        "%d cached views seeded, %d rays/step, device %s, grid backend %s",
        variant.name,
        variant.augment,
        variant.fresh_fraction,
        variant.mesh_surface,
        variant.correlation_loss,
        len(info.feature_shapes),
        [list(s) for s in info.feature_shapes],
        trainer.seeded_views,
        config.rays_per_step,
        device,
        getattr(trainer.model.field.encoding, "backend", "?"),
    )
    trainer.fit(ckpt_dir, fp, resume=False, extra={"quality_before": before})
    after = {k: feature_quality(nerf, trainer.model, v, mesh) for k, v in quality_views.items()}
    quality = summarize(before, after, bool(info.untrained)) if quality_views else None

    record = {
        **trainer.stats(),
        "teacher": teacher_record,
        "quality": quality,
        "render_size": render_size,
        "stage_wall_s": time.perf_counter() - t_stage,
        "seed": seed,
        "device": str(device),
        "grid_backend": getattr(trainer.model.field.encoding, "backend", None),
        "num_parameters": sum(p.numel() for p in trainer.model.parameters()),
        "config": to_dict(config),
        **(metadata or {}),
    }
    field_metadata = {
        "teacher": info.name,
        "teacher_info": teacher_record,
        "variant": to_dict(variant),
        "config": to_dict(config),
        "seed": seed,
        **(metadata or {}),
    }
    write_outputs(trainer, record, field_metadata, field=field, curve=curve, stats=stats)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    if quality:
        log.info(
            "train_imitation: cosine %s, MSE %s (before: %s), %d teacher calls in %d steps, %.0f s",
            {k: round(v["cosine"], 4) for k, v in after.items()},
            {k: round(v["mse"], 5) for k, v in after.items()},
            {k: round(v["mse"], 5) for k, v in (before or {}).items()},
            record["teacher_calls"],
            record["steps"],
            record["wall_s"],
        )
    return record


def train_imitation(
    model_path: str | os.PathLike,
    cameras_json: str | os.PathLike,
    cache_path: str | os.PathLike,
    *,
    field: str | os.PathLike,
    curve: str | os.PathLike,
    stats: str | os.PathLike,
    config: TrainImitationConfig,
    variant: str,
    teacher_config: TeacherConfig,
    mesh_path: str | os.PathLike | None = None,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Rule ``train_imitation``: load the inputs and run :func:`run_imitation`.

    Args:
        model_path: the NeRF (``results/{dataset}/{scene}/nerf/model.pt``).
        cameras_json: ``results/{dataset}/{scene}/poses/cameras.json``.
        cache_path: ``results/{dataset}/{scene}/features/{teacher}.h5``.
        field, curve, stats: the rule's outputs in ``results/{dataset}/{scene}/imitation/{variant}/``.
        config: the ``imitation:`` section (presets resolved).
        variant: ``full | no_aug | no_cache | mesh | no_corr``.
        teacher_config: :class:`san.teachers.TeacherConfig` (must be the cache's teacher).
        mesh_path: ``mesh/mesh_normalized.ply`` (required by ``mesh``).
        device: ``auto | cpu | cuda[:N]``.
        seed: global seed.
    """
    from san.features.cache import open_feature_cache
    from san.rendering.mesh_raycast import load_mesh
    from san.trained_scene import check_teacher, load_trained

    dev = resolve_device(device)
    var = variant_config(variant, config)
    if var.mesh_surface and mesh_path is None:
        raise ValueError(f"variant {variant!r} needs the extracted mesh (mesh/mesh_normalized.ply)")
    trained = load_trained(cameras_json, model_path, teacher=teacher_config, device=str(dev), given="configured")
    scene, nerf, teacher = trained.scene, trained.nerf, trained.teacher
    mesh = load_mesh(mesh_path, dev) if var.mesh_surface else None
    with open_feature_cache(cache_path) as cache:
        meta = cache.meta
        made_with = {
            "name": meta.teacher,
            "checkpoint_sha256": meta.checkpoint_sha256,
            "feature_shapes": meta.feature_shapes,
        }
        check_teacher(
            made_with,
            teacher.info,
            cache_path,
            given="configured",
            made="made with",
            hint="rebuild the feature cache with this teacher",
        )
        fingerprint = {
            "nerf_sha256": sha256_file(model_path),
            "cache": [cache.meta.created, cache.meta.nerf_digest, cache.num_views],
            "mesh_sha256": sha256_file(mesh_path) if mesh is not None else None,
        }
        metadata = {
            "nerf": str(model_path),
            "cache": str(cache_path),
            "cameras": str(cameras_json),
            "scene_kind": scene.scene_kind,
        }
        return run_imitation(
            nerf,
            teacher,
            scene.train_frames,
            field=field,
            curve=curve,
            stats=stats,
            config=config,
            variant=var,
            cache=cache,
            mesh=mesh,
            test_frames=scene.test_frames,
            seed=seed,
            device=dev,
            fingerprint=fingerprint,
            metadata=metadata,
        )
