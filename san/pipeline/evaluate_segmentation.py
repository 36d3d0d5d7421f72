"""Rule ``evaluate_segmentation``: teacher masks vs imitation masks on held-out views, and timings.

Inputs: the NeRF (``nerf/model.pt``), ``poses/cameras.json``, the imitation field
(``imitation/{variant}/field.pt``), its ``train_stats.json`` (training time) and, for the
mesh-surface variant, ``mesh/mesh_normalized.ply``. The protocol is
:mod:`san.evaluation.protocol`'s docstring; the timings :mod:`san.evaluation.timing`'s.

Outputs in ``results/{dataset}/{scene}/evaluation/{variant}/`` (each written atomically):

* ``metrics.json``: ``dataset, scene, variant``; ``teacher``, ``untrained``,
  ``teacher_checkpoint_sha256``; ``mask_iou``, ``feature_mse``, ``feature_cosine``,
  ``iou_ceiling`` (``null`` when disabled), ``ceiling_shift_px``; ``n_views``, ``n_clicks``,
  ``render_size``, ``grid``; ``timing_teacher``, ``timing_teacher_untrained``, ``device``,
  ``timing_ms`` (step -> median ms), ``timing`` (step -> every run, warm-up and repeats),
  ``imitation_step``, ``fps`` (``original``, ``imitation``, ``imitation_volume`` or
  ``imitation_mesh``, ``speedup``), ``timing_note``; ``train_minutes``; ``per_view`` (view,
  name, mask_iou, feature_mse, feature_cosine, iou_ceiling); ``protocol``; ``inputs``;
  ``qualitative`` (the figure's file name, beside ``metrics.json``).
* ``clicks.csv``: one row per click, :data:`san.evaluation.protocol.CLICK_COLUMNS`.
* ``qualitative.png``: the first ``evaluation.qualitative_views`` views, click | teacher mask |
  imitation mask; the title says ``untrained teacher`` when it is.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from san.evaluation.config import EvaluationConfig
from san.evaluation.protocol import (
    ViewResult,
    ceiling_shift_px,
    click_rows,
    evaluate_views,
    evaluation_views,
    summarize,
    text_rows,
)
from san.evaluation.timing import (
    IMITATION_MESH,
    IMITATION_VOLUME,
    TEACHER_ENCODE,
    build_timing_teacher,
    check_timing_teacher,
    device_name,
    measure_imitation_timing,
    measure_render_timing,
    measure_timing,
    pipeline_fps,
)
from san.teachers import TeacherConfig
from san.teachers.base import Teacher
from san.trained_scene import rgb_renderer
from san.utils.io import atomic_path, atomic_write_json

log = logging.getLogger("san")


def read_train_minutes(stats_json: str | os.PathLike | None) -> float | None:
    """Imitation training time from ``train_stats.json`` (``train_minutes`` or ``wall_s``)."""
    if stats_json is None:
        return None
    stats = json.loads(Path(stats_json).read_text())
    if "train_minutes" in stats:
        return float(stats["train_minutes"])
    if "wall_s" in stats:
        return float(stats["wall_s"]) / 60.0
    return None


def read_teacher_timing(path: str | os.PathLike, config: EvaluationConfig) -> dict:
    """``teacher_timing.json`` of rule ``time_teacher``, checked against this evaluation's
    protocol resolution (the timings must be of the same image size)."""
    record = json.loads(Path(path).read_text())
    missing = [k for k in ("timing", "timing_teacher", "timing_teacher_untrained", "render_size") if k not in record]
    if missing:
        raise ValueError(f"{path}: not a teacher timing record (missing {missing}); rerun rule time_teacher")
    if int(record["render_size"]) != config.render_size:
        raise ValueError(
            f"{path}: timed at render_size {record['render_size']}, but evaluation.render_size is {config.render_size}; rerun rule time_teacher"
        )
    return record


def build_record(
    dataset: str,
    scene: str,
    variant: str,
    results: Sequence[ViewResult],
    timing: dict[str, dict],
    imitation_step: str,
    teacher_info,
    timing_teacher_info,
    config: EvaluationConfig,
    **extra: Any,
) -> dict:
    """The ``metrics.json`` record (module docstring) from the view results and timings.

    ``teacher_info`` is a :class:`san.teachers.TeacherInfo`; ``timing_teacher_info`` anything with
    its ``name`` and ``untrained``; ``extra`` keys (``device``, ``train_minutes``, ``inputs``, ...)
    are added as they are.
    """
    summary = summarize(results)
    timing_ms = {k: v["median_ms"] for k, v in timing.items()}
    encode_runs = timing.get(TEACHER_ENCODE, {})
    note = ""
    if encode_runs and encode_runs.get("warmup", 1) == 0:
        note = f"teacher encoding: {encode_runs['repeats']} run(s) without warm-up (first-call costs included; an upper bound)"
    record = {
        "dataset": dataset,
        "scene": scene,
        "variant": variant,
        "teacher": teacher_info.name,
        "untrained": bool(teacher_info.untrained),
        "teacher_kind": teacher_info.kind,
        "teacher_label": teacher_info.label,
        "teacher_checkpoint_sha256": teacher_info.checkpoint_sha256,
        "mask_iou": summary["mask_iou"],
        "feature_mse": summary["feature_mse"],
        "feature_cosine": summary["feature_cosine"],
        "iou_ceiling": summary["iou_ceiling"],
        "n_views": summary["n_views"],
        "n_clicks": summary["n_clicks"],
        "render_size": config.render_size,
        "grid": config.grid,
        "timing_teacher": timing_teacher_info.name,
        "timing_teacher_untrained": bool(timing_teacher_info.untrained),
        "timing_ms": timing_ms,
        "timing": timing,
        "imitation_step": imitation_step,
        "fps": pipeline_fps(timing_ms, imitation_step),
        "timing_note": note,
        "per_view": summary["per_view"],
        **(
            {
                "text_iou": summary["text_iou"],
                "text_prompts": summary["text_prompts"],
                "n_text_masks": summary["n_text_masks"],
                "texts": text_rows(results),
            }
            if "text_iou" in summary
            else {}
        ),
        "protocol": {
            "views": "test split (every 8th frame), rendered by the NeRF, pinhole",
            "clicks": f"{config.grid}x{config.grid} grid, click k = j*n + i at ((i+0.5)/n*W, (j+0.5)/n*H)",
            "multimask_output": False,
            "mask_threshold": 0.0,
            "empty_masks": "both empty -> IoU 1.0, one empty -> 0.0",
            "ceiling_shift_at_1024": config.ceiling_shift_at_1024 if config.ceiling else None,
        },
        "qualitative": "qualitative.png",
    }
    record.update(extra)
    return record


def write_outputs(
    results: Sequence[ViewResult],
    record: dict,
    metrics_json: str | os.PathLike,
    clicks_csv: str | os.PathLike,
    figure_png: str | os.PathLike,
) -> dict:
    """Write ``clicks.csv``, ``qualitative.png`` and, last, ``metrics.json``; returns the record."""
    import pandas as pd

    from san.evaluation.protocol import CLICK_COLUMNS
    from san.report.figures import qualitative_figure

    with atomic_path(clicks_csv) as tmp:
        pd.DataFrame(click_rows(results), columns=list(CLICK_COLUMNS)).to_csv(tmp, index=False)
    kind = record.get("teacher_kind", "untrained" if record["untrained"] else "sam")
    label = "untrained teacher " if record["untrained"] else "teacher "
    title = (
        f"{record.get('dataset', '?')}/{record.get('scene', '?')} [{record.get('variant', '?')}], {label}{record['teacher']}: "
        f"mean mask IoU {record['mask_iou']:.3f}"
        + (f" (teacher shift ceiling {record['iou_ceiling']:.3f})" if record.get("iou_ceiling") is not None else "")
        + (" - UNTRAINED teacher, random weights: masks are not SAM's" if record["untrained"] else "")
        + (" - teacher trained on procedural scenes (not SAM)" if kind == "procedural" else "")
    )
    qualitative_figure(results, title, figure_png)
    record = dict(record, qualitative=Path(figure_png).name)
    atomic_write_json(metrics_json, record)
    return record


@dataclass
class EvaluationParts:
    """What the evaluation needs of a trained scene.

    Attributes:
        views: the held-out :class:`~san.evaluation.protocol.EvalView` at the protocol resolution.
        render_rgb: ``view -> HxWx3`` float NeRF rendering in ``[0, 1]``.
        render_features: ``view -> list of Cxhxw`` imitated maps (padded-square layout).
        teacher: the teacher the field imitates.
        imitation_step: ``imitation_encode_mesh`` for a mesh-surface field, else ``..._volume``.
        device: where everything runs.
    """

    views: list
    render_rgb: Callable[[Any], torch.Tensor]
    render_features: Callable[[Any], list[torch.Tensor]]
    teacher: Teacher
    imitation_step: str
    device: torch.device


def load_parts(
    model_path: str | os.PathLike,
    cameras_json: str | os.PathLike,
    field_path: str | os.PathLike,
    teacher_config: TeacherConfig | None = None,
    config: EvaluationConfig = EvaluationConfig(),
    mesh_path: str | os.PathLike | None = None,
    device: str = "auto",
) -> EvaluationParts:
    """Load the scene's test views, the NeRF, the field (and mesh) and the teacher with
    :func:`san.trained_scene.load_trained`, which checks that the field imitates ``teacher_config``
    (default: the teacher the field records)."""
    from san.imitation.render import render_features
    from san.trained_scene import load_trained

    trained = load_trained(
        cameras_json,
        model_path,
        field=field_path,
        mesh=mesh_path,
        teacher=teacher_config,
        device=device,
        given="configured",
    )
    nerf, field, mesh, dev = trained.nerf, trained.field, trained.mesh, trained.device
    views = evaluation_views(trained.scene, config.render_size, config.max_views)
    chunk = {} if config.chunk is None else {"chunk": config.chunk}

    @torch.no_grad()
    def render_feats(view):
        c2w, K = view.camera.tensors(dev)
        return render_features(nerf, field, c2w, K, view.width, view.height, mesh=mesh, **chunk)

    return EvaluationParts(
        views,
        rgb_renderer(nerf, config),
        render_feats,
        trained.teacher,
        IMITATION_MESH if field.mesh_surface else IMITATION_VOLUME,
        dev,
    )


def evaluate_segmentation(
    model_path: str | os.PathLike,
    cameras_json: str | os.PathLike,
    field_path: str | os.PathLike,
    *,
    metrics_json: str | os.PathLike,
    clicks_csv: str | os.PathLike,
    figure_png: str | os.PathLike,
    dataset: str,
    scene: str,
    variant: str,
    teacher_config: TeacherConfig,
    config: EvaluationConfig = EvaluationConfig(),
    stats_json: str | os.PathLike | None = None,
    mesh_path: str | os.PathLike | None = None,
    device: str = "auto",
    teacher_timing_json: str | os.PathLike | None = None,
    text_prompts: Sequence[str] | None = None,
) -> dict:
    """Evaluate one scene and variant and write the three outputs (module docstring).

    Args:
        model_path, cameras_json, field_path: the NeRF, the scene, the imitation field.
        metrics_json, clicks_csv, figure_png: the outputs.
        dataset, scene, variant: the wildcards (recorded in ``metrics.json``).
        teacher_config: :class:`san.teachers.TeacherConfig` of the teacher the field imitates.
        config: the ``evaluation`` config section.
        stats_json: the field's ``train_stats.json`` (training minutes), optional.
        mesh_path: ``mesh/mesh_normalized.ply``; required when the field renders mesh surfaces.
        device: ``auto | cpu | cuda[:N]``.
        teacher_timing_json: the scene's ``teacher_timing.json`` (rule ``time_teacher``): its
            teacher-encoding and decoding times are used, and only the NeRF's RGB rendering and
            the field are timed here; ``None`` times everything in this call.
        text_prompts: the scene's text prompts (protocol step 7; rule ``evaluate_segmentation``
            passes the scene sheet's ``text_prompts`` column, else ``evaluation.text_prompts``);
            ``None``: ``config.text_prompts``.

    Returns:
        The ``metrics.json`` record.

    Raises:
        san.teachers.TeacherError: text prompts for a teacher without a text head (before any model
            loads).
    """
    from types import SimpleNamespace

    from san.teachers.preflight import check_text_prompts

    t0 = time.perf_counter()
    if text_prompts is None:  # before any heavy work: the same check as at DAG build
        check_text_prompts(teacher_config, config.text_prompts)
    else:
        check_text_prompts(teacher_config, scenes={f"{dataset}/{scene}": tuple(text_prompts)})
    texts = tuple(config.text_prompts if text_prompts is None else text_prompts)
    scene_timing = read_teacher_timing(teacher_timing_json, config) if teacher_timing_json is not None else None
    if scene_timing is None:
        check_timing_teacher(teacher_config, config)  # before any heavy work
    parts = load_parts(model_path, cameras_json, field_path, teacher_config, config, mesh_path, device)
    teacher, views, dev = parts.teacher, parts.views, parts.device
    log.info(
        "evaluate_segmentation %s/%s [%s]: %d test views at %d px, teacher %s%s, grid %dx%d",
        dataset,
        scene,
        variant,
        len(views),
        config.render_size,
        teacher.info.name,
        " (UNTRAINED)" if teacher.info.untrained else "",
        config.grid,
        config.grid,
    )
    shift = functools.partial(ceiling_shift_px, at_1024=config.ceiling_shift_at_1024) if config.ceiling else None
    results = evaluate_views(
        teacher,
        parts.render_rgb,
        parts.render_features,
        views,
        config.grid,
        shift,
        config.qualitative_views,
        texts=texts,
    )

    if scene_timing is None:
        timing_teacher = build_timing_teacher(teacher_config, config, dev)
        timing_info = timing_teacher.info
        log.info(
            "timing with %s%s on %s",
            timing_info.name,
            " (UNTRAINED)" if timing_info.untrained else "",
            device_name(dev),
        )
        timing = measure_timing(
            views[0], parts.render_rgb, parts.render_features, timing_teacher, parts.imitation_step, config, dev
        )
    else:
        timing_info = SimpleNamespace(
            name=scene_timing["timing_teacher"], untrained=bool(scene_timing["timing_teacher_untrained"])
        )
        log.info(
            "timing: %s from %s, the RGB rendering and the field timed here on %s",
            timing_info.name,
            teacher_timing_json,
            device_name(dev),
        )
        timing = (
            dict(scene_timing["timing"])
            | measure_render_timing(views[0], parts.render_rgb, config, dev)
            | measure_imitation_timing(views[0], parts.render_features, parts.imitation_step, config, dev)
        )

    record = build_record(
        dataset,
        scene,
        variant,
        results,
        timing,
        parts.imitation_step,
        teacher.info,
        timing_info,
        config,
        device=device_name(dev),
        ceiling_shift_px=shift((views[0].height, views[0].width)) if shift else None,
        train_minutes=read_train_minutes(stats_json),
        inputs={
            "model": str(model_path),
            "cameras": str(cameras_json),
            "field": str(field_path),
            "mesh": None if mesh_path is None else str(mesh_path),
        },
    )
    record["wall_s"] = time.perf_counter() - t0
    record = write_outputs(results, record, metrics_json, clicks_csv, figure_png)
    log.info(
        "evaluate_segmentation %s/%s [%s]: mask IoU %.4f (ceiling %s), feature MSE %.4g, cosine %.4f, FPS %.3g -> %.3g (%.1f s)",
        dataset,
        scene,
        variant,
        record["mask_iou"],
        "n/a" if record["iou_ceiling"] is None else f"{record['iou_ceiling']:.4f}",
        record["feature_mse"],
        record["feature_cosine"],
        record["fps"]["original"],
        record["fps"]["imitation"],
        record["wall_s"],
    )
    return record
