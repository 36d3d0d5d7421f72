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

import argparse
import csv
import io
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from san.config import to_dict
from san.features.augment import CameraSpec, camera_at_size
from san.imitation.config import TrainImitationConfig, VariantConfig, imitation_config, variant_config
from san.imitation.model import save_imitation
from san.imitation.quality import evenly_spaced, feature_quality, summarize, teacher_views
from san.imitation.trainer import CURVE_COLUMNS, make_trainer
from san.utils.device import resolve_device
from san.utils.io import atomic_write_json, atomic_write_text, sha256_file

log = logging.getLogger("san")


def _curve_csv(rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CURVE_COLUMNS), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _cameras(frames: Sequence[Any]) -> list[CameraSpec]:
    return [
        CameraSpec(np.asarray(f.c2w, dtype=np.float64), np.asarray(f.K, dtype=np.float64), int(f.width), int(f.height))
        for f in frames
    ]


def run_imitation(
    nerf: Any,
    teacher: Any,
    train_frames: Sequence[Any],
    out_dir: str | os.PathLike,
    config: TrainImitationConfig,
    variant: VariantConfig,
    cache: Any | None = None,
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
        train_frames: training cameras (``Frame`` or :class:`CameraSpec`).
        out_dir: ``results/{dataset}/{scene}/imitation/{variant}``.
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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    if hasattr(nerf, "requires_grad_"):
        nerf.eval().requires_grad_(False)
    train_cams = _cameras(train_frames)
    trainer = make_trainer(nerf, teacher, train_cams, config, variant, cache, mesh=mesh, seed=seed, device=device)
    info = teacher.info
    teacher_record = {
        "name": info.name,
        "untrained": bool(info.untrained),
        "teacher_kind": info.kind,
        "teacher_label": info.label,
        "checkpoint_sha256": info.checkpoint_sha256,
        "input_size": info.input_size,
        "feature_shapes": [list(s) for s in info.feature_shapes],
    }
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

    # Quality views: the NeRF's renderings of held-out and training cameras, encoded once.
    render_size = trainer.render_size
    quality_views: dict[str, list] = {}
    if config.eval_views > 0:
        t0 = time.perf_counter()
        test = [camera_at_size(c, render_size) for c in _cameras(test_frames)]
        pick_test = evenly_spaced(test, config.eval_views)
        pick_train = evenly_spaced(train_cams, config.eval_views)
        quality_views["test"] = teacher_views(
            nerf, teacher, [test[i] for i in pick_test], [f"test/{i}" for i in pick_test]
        )
        quality_views["train"] = teacher_views(
            nerf,
            teacher,
            [camera_at_size(train_cams[i], render_size) for i in pick_train],
            [f"train/{i}" for i in pick_train],
        )
        log.info(
            "train_imitation: %d + %d quality views encoded in %.1f s (not counted as training teacher calls)",
            len(pick_test),
            len(pick_train),
            time.perf_counter() - t0,
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

    stats = {
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
    atomic_write_text(out_dir / "training_curve.csv", _curve_csv(trainer.curve))
    atomic_write_json(out_dir / "train_stats.json", stats)
    save_imitation(
        trainer.model,
        out_dir / "field.pt",
        {
            "teacher": info.name,
            "teacher_info": teacher_record,
            "variant": to_dict(variant),
            "config": to_dict(config),
            "seed": seed,
            **(metadata or {}),
        },
    )
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    if quality:
        log.info(
            "train_imitation: cosine %s, MSE %s (before: %s), %d teacher calls in %d steps, %.0f s",
            {k: round(v["cosine"], 4) for k, v in after.items()},
            {k: round(v["mse"], 5) for k, v in after.items()},
            {k: round(v["mse"], 5) for k, v in (before or {}).items()},
            stats["teacher_calls"],
            stats["steps"],
            stats["wall_s"],
        )
    return stats


def train_imitation(
    model_path: str | os.PathLike,
    cameras_json: str | os.PathLike,
    cache_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: TrainImitationConfig,
    variant: str,
    teacher_config: Any,
    mesh_path: str | os.PathLike | None = None,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Rule ``train_imitation``: load the inputs and run :func:`run_imitation`.

    Args:
        model_path: the NeRF (``results/{dataset}/{scene}/nerf/model.pt``).
        cameras_json: ``results/{dataset}/{scene}/poses/cameras.json``.
        cache_path: ``results/{dataset}/{scene}/features/{teacher}.h5``.
        out_dir: ``results/{dataset}/{scene}/imitation/{variant}``.
        config: the ``imitation:`` section (presets resolved).
        variant: ``full | no_aug | no_cache | mesh | no_corr``.
        teacher_config: :class:`san.teachers.TeacherConfig` (must be the cache's teacher).
        mesh_path: ``mesh/mesh_normalized.ply`` (required by ``mesh``).
        device: ``auto | cpu | cuda[:N]``.
        seed: global seed.
    """
    from san.data.scene import load_scene
    from san.features.cache import FeatureCacheError, open_feature_cache
    from san.models.nerf import load_nerf
    from san.rendering.mesh_raycast import load_mesh
    from san.teachers import teacher_from_config

    dev = resolve_device(device)
    var = variant_config(variant, config)
    scene = load_scene(cameras_json)
    nerf = load_nerf(model_path, dev)
    teacher = teacher_from_config(teacher_config, str(dev))
    mesh = None
    if var.mesh_surface:
        if mesh_path is None:
            raise ValueError(f"variant {variant!r} needs the extracted mesh (mesh/mesh_normalized.ply)")
        mesh = load_mesh(mesh_path, dev)
    with open_feature_cache(cache_path) as cache:
        if cache.meta.teacher != teacher.info.name or tuple(cache.meta.feature_shapes) != tuple(
            teacher.info.feature_shapes
        ):
            raise FeatureCacheError(
                f"{cache_path}: made with teacher {cache.meta.teacher!r} {list(cache.meta.feature_shapes)}, "
                f"but the configured teacher is {teacher.info.name!r} {list(teacher.info.feature_shapes)}"
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
            out_dir,
            config,
            var,
            cache,
            mesh,
            scene.test_frames,
            seed,
            dev,
            fingerprint,
            metadata,
        )


def main(argv: list[str] | None = None) -> None:
    """``python -m san.pipeline.train_imitation --model M --cameras C --cache H --out DIR --variant full``."""
    from san.teachers import TeacherConfig
    from san.utils.progress import setup_logging

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="nerf/model.pt")
    p.add_argument("--cameras", required=True, help="poses/cameras.json")
    p.add_argument("--cache", required=True, help="features/{teacher}.h5")
    p.add_argument("--out", required=True, help="output folder (results/{dataset}/{scene}/imitation/{variant})")
    p.add_argument("--variant", default="full")
    p.add_argument("--mesh", default=None, help="mesh/mesh_normalized.ply (mesh variant)")
    p.add_argument("--teacher", default="sam_untrained_tiny")
    p.add_argument("--teacher-checkpoint", default=None)
    p.add_argument("--preset", default="cpu", choices=sorted(TrainImitationConfig.PRESETS))
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override an imitation config key, e.g. steps=200",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    setup_logging()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    config = imitation_config({"preset": args.preset, **overrides})
    stats = train_imitation(
        args.model,
        args.cameras,
        args.cache,
        args.out,
        config,
        args.variant,
        TeacherConfig(args.teacher, args.teacher_checkpoint),
        args.mesh,
        args.device,
        args.seed,
    )
    print(json.dumps({k: stats[k] for k in ("steps", "teacher_calls", "wall_s", "quality")}, indent=2, default=str))


if __name__ == "__main__":
    main()
