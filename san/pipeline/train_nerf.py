"""Rule ``train_nerf``: fit the scene NeRF, evaluate it on the test views, write ``model.pt`` last.

Outputs in ``results/{dataset}/{scene}/nerf/`` (the rule's ``model``, ``metrics`` and ``curve``, passed by name):

* ``model.pt`` — :func:`san.models.nerf.save_nerf`; written last and atomically (the "done" marker);
* ``metrics.json`` — per test view and mean ``psnr`` / ``ssim``, ``steps``, ``wall_seconds`` (of
  training, summed over resumes), ``eval_seconds``, ``curve_test_seconds`` (the curve's
  ``test_psnr`` points), ``device``, ``encoding_backend``,
  ``num_parameters``, ``scene_kind`` and the resolved ``config``;
* ``test_renders/{frame index:03d}.png`` — the test views as rendered;
* ``training_curve.csv`` — ``step, loss, psnr, lr, wall_seconds, test_psnr`` every ``log_every``
  steps: ``loss`` and ``psnr`` of that step's training batch, ``wall_seconds`` of training so far;
  ``test_psnr`` (empty on other rows) every ``curve_test_every`` steps and at the last one: held-out PSNR
  on a fixed subset of ``curve_test_rays`` test-view pixels (:meth:`NeRFTrainer.test_psnr`), whose time
  is not in ``wall_seconds`` but in ``metrics.json``'s ``curve_test_seconds``;
* ``checkpoints/step_*.ckpt`` while training (removed once ``model.pt`` exists). A checkpoint
  holds the model, optimiser, schedule, step, RNG states, curve and elapsed time, plus the config
  and scene it belongs to: a killed job resumes bit-for-bit, and a checkpoint from another config
  or scene is never silently reloaded (it is reported and ignored).

Training: :class:`san.models.nerf_trainer.NeRFTrainer` (config :class:`TrainNeRFConfig`); the loop's
schedule, progress lines, checkpoints and curve file are :mod:`san.utils.training`'s, shared with
the imitation loop.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from san.config import to_dict
from san.data.scene import load_scene
from san.models.config import TrainNeRFConfig
from san.models.nerf import save_nerf
from san.models.nerf_trainer import CURVE_COLUMNS, NeRFTrainer
from san.utils.checks import require_finite
from san.utils.device import resolve_device, synchronize
from san.utils.io import atomic_write_json, sha256_file
from san.utils.training import TrainingLoop, every_or_last, resume_checkpoint, write_curve_csv

log = logging.getLogger("san")


def _fingerprint(config: TrainNeRFConfig, cameras_json: Path) -> dict:
    return {"config": to_dict(config), "cameras_sha256": sha256_file(cameras_json)}


def train_nerf(
    cameras_json: str | os.PathLike,
    *,
    model: str | os.PathLike,
    metrics: str | os.PathLike,
    curve: str | os.PathLike,
    config: TrainNeRFConfig,
    device: str = "auto",
) -> dict[str, Any]:
    """Train, evaluate and save the scene NeRF (see the module docstring for the outputs).

    Args:
        cameras_json: the scene's ``poses/cameras.json`` (the rule's input ``cameras``).
        model, metrics, curve: the rule's outputs (``model.pt``, ``metrics.json``,
            ``training_curve.csv``); ``checkpoints/`` and ``test_renders/`` go beside ``model``.
        config: :class:`TrainNeRFConfig` (presets already resolved).
        device: ``"auto"``, ``"cpu"``, ``"cuda[:N]"``.

    Returns:
        The ``metrics.json`` content.
    """
    cameras_json, out_dir = Path(cameras_json), Path(model).parent
    dev = resolve_device(device)
    scene = load_scene(cameras_json)
    trainer = NeRFTrainer(scene, config, dev)
    ckpt_dir = out_dir / "checkpoints"
    fingerprint = _fingerprint(config, cameras_json)
    ignoring = "train_nerf: ignoring %s: it belongs to another config or cameras.json"
    found = resume_checkpoint(ckpt_dir, fingerprint, ignoring=ignoring, map_location=dev) if config.resume else None
    if found is not None:
        path, state = found
        trainer.load_state_dict(state["trainer"])
        log.info("train_nerf: resuming from %s (step %d)", path, trainer.step_count)
    log.info(
        "train_nerf: %s scene, %d train / %d test views, %d rays, device %s, hash grid backend %s",
        scene.scene_kind,
        len(scene.train_frames),
        len(scene.test_frames),
        len(trainer.rays),
        dev,
        trainer.model.encoding_backend,
    )
    loop = TrainingLoop(
        config.steps,
        start=trainer.step_count,
        log_every=config.log_every,
        checkpoint_every=config.checkpoint_every,
        checkpoint_dir=ckpt_dir,
    )
    t_last = time.perf_counter()
    while trainer.step_count < loop.end:
        stats = trainer.step()
        step = trainer.step_count
        loop.report(step, loss=stats["loss"], psnr=stats["psnr"])
        test_now = config.curve_test_every > 0 and every_or_last(step, config.curve_test_every, config.steps)
        log_now = loop.curve_due(step) or test_now
        checkpoint_now = loop.checkpoint_due(step)
        if log_now or checkpoint_now:
            synchronize(dev)
            now = time.perf_counter()
            trainer.elapsed, t_last = trainer.elapsed + now - t_last, now
        if log_now:
            row = {"step": step, **{k: stats[k] for k in ("loss", "psnr", "lr")}}
            row["wall_seconds"] = round(trainer.elapsed, 3)
            if test_now:
                value = trainer.test_psnr()  # not counted in wall_seconds (t_last restarts after it)
                synchronize(dev)
                t_last = time.perf_counter()
                trainer.test_seconds += t_last - now
                if value is not None:
                    row["test_psnr"] = round(value, 4)
            trainer.curve.append(row)
        if checkpoint_now:
            loop.save(step, {"fingerprint": fingerprint, "trainer": trainer.state_dict()})

    log.info("train_nerf: evaluating %d test views", len(scene.test_frames))
    t_eval = time.perf_counter()
    evaluation = trainer.evaluate(scene.indices("test"), out_dir / "test_renders")
    require_finite(
        evaluation["psnr"],
        stage="train_nerf",
        what="the test PSNR",
        hint="the trained field renders NaN (training diverged: lower nerf.lr) or there are no test views",
    )
    nerf = trainer.model
    record = {
        "psnr": evaluation["psnr"],
        "ssim": evaluation["ssim"],
        "per_view": evaluation["per_view"],
        "steps": trainer.step_count,
        "wall_seconds": round(trainer.elapsed, 2),
        "eval_seconds": round(time.perf_counter() - t_eval, 2),
        "curve_test_seconds": round(trainer.test_seconds, 2),
        "device": str(dev),
        "encoding_backend": nerf.encoding_backend,
        "num_parameters": sum(p.numel() for p in nerf.parameters()),
        "scene_kind": scene.scene_kind,
        "config": to_dict(config),
    }
    write_curve_csv(curve, trainer.curve, CURVE_COLUMNS)
    atomic_write_json(metrics, record)
    save_nerf(nerf, model)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    log.info(
        "train_nerf: test PSNR %.2f dB, SSIM %.4f, %.0f s of training",
        record["psnr"],
        record["ssim"],
        trainer.elapsed,
    )
    return record
