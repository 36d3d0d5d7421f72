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

from san.evaluation.protocol import (
    EvaluationConfig,
    ViewResult,
    ceiling_shift_px,
    click_grid,
    click_rows,
    decode_click,
    evaluate_views,
    evaluation_views,
    image_batch,
    summarize,
)
from san.evaluation.timing import (
    DECODE,
    IMITATION_MESH,
    IMITATION_VOLUME,
    RGB_RENDER,
    TEACHER_ENCODE,
    pipeline_fps,
    time_steps,
)
from san.utils.io import atomic_path, atomic_write_json

log = logging.getLogger("san")


def device_name(device: torch.device) -> str:
    """``"cpu"`` or the GPU's name (what Table 1's ``device`` column shows)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


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


def measure_teacher_timing(
    view,
    render_rgb_fn: Callable[[Any], Any],
    timing_teacher,
    config: EvaluationConfig,
    device: torch.device,
) -> dict[str, dict]:
    """Time the variant-independent Table 1 steps on one view: RGB rendering, the timing
    teacher's encoder, and its decoder on its own features with one click at the image centre
    (see :mod:`san.evaluation.timing`). The encoder runs only as often as its warm-up and repeats
    say (on a CPU, ViT-H takes about a minute per call): the decoder reuses its last output."""
    image = image_batch(render_rgb_fn(view))
    h, w = int(image.shape[-2]), int(image.shape[-1])
    last: dict[str, Any] = {}

    def encode():
        last["features"] = timing_teacher.encode(image)

    encoded = time_steps({TEACHER_ENCODE: encode}, config.timing_encode_warmup, config.timing_encode_repeats, device)
    click = click_grid(w, h, 1)[0]
    steps = {
        RGB_RENDER: lambda: render_rgb_fn(view),
        DECODE: lambda: decode_click(timing_teacher, last["features"], click, (h, w)),
    }
    timing = time_steps(steps, config.timing_warmup, config.timing_repeats, device)
    return {RGB_RENDER: timing[RGB_RENDER], TEACHER_ENCODE: encoded[TEACHER_ENCODE], DECODE: timing[DECODE]}


def measure_imitation_timing(
    view,
    render_features_fn: Callable[[Any], Sequence[torch.Tensor]],
    imitation_step: str,
    config: EvaluationConfig,
    device: torch.device,
) -> dict[str, dict]:
    """Time the field's feature rendering of one view; ``imitation_step`` names its encoding
    (volumetric or mesh surface)."""
    return time_steps(
        {imitation_step: lambda: render_features_fn(view)}, config.timing_warmup, config.timing_repeats, device
    )


def measure_timing(
    view,
    render_rgb_fn: Callable[[Any], Any],
    render_features_fn: Callable[[Any], Sequence[torch.Tensor]],
    timing_teacher,
    imitation_step: str,
    config: EvaluationConfig,
    device: torch.device,
) -> dict[str, dict]:
    """Every Table 1 step on one view: :func:`measure_teacher_timing` and
    :func:`measure_imitation_timing` together."""
    timing = measure_teacher_timing(view, render_rgb_fn, timing_teacher, config, device)
    return timing | measure_imitation_timing(view, render_features_fn, imitation_step, config, device)


def build_timing_teacher(teacher_config, config: EvaluationConfig, device: torch.device):
    """The teacher whose encoder is timed: ``evaluation.timing_teacher``, or the quality teacher
    (``teacher_config``) when that is ``None`` or the same name. Another teacher is built without
    weights, so it must be an untrained variant (e.g. ``sam_vit_h_untrained``)."""
    from san.teachers import TeacherConfig, build_teacher, teacher_from_config

    teacher_config = teacher_config or TeacherConfig()
    if check_timing_teacher(teacher_config, config):
        return build_teacher(config.timing_teacher, None, str(device))
    return teacher_from_config(teacher_config, str(device))


def check_timing_teacher(teacher_config, config: EvaluationConfig) -> bool:
    """Whether ``evaluation.timing_teacher`` names a teacher other than the quality teacher;
    raises ``ValueError`` when that one is not an untrained variant (it has no weights)."""
    if config.timing_teacher in (None, teacher_config.name):
        return False
    if "untrained" not in config.timing_teacher:
        raise ValueError(
            f"evaluation.timing_teacher {config.timing_teacher!r}: a timing teacher other than the quality teacher is built "
            "without weights, so it must be an untrained one (e.g. sam_vit_h_untrained)"
        )
    return True


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


def _view_camera(view, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.as_tensor(view.c2w, dtype=torch.float32, device=device),
        torch.as_tensor(view.K, dtype=torch.float32, device=device),
    )


def rgb_renderer(nerf, config: EvaluationConfig, device: torch.device) -> Callable[[Any], torch.Tensor]:
    """``view -> HxWx3`` NeRF rendering of an :class:`~san.evaluation.protocol.EvalView`."""
    chunk = {} if config.chunk is None else {"chunk": config.chunk}

    @torch.no_grad()
    def render_rgb(view):
        c2w, K = _view_camera(view, device)
        return nerf.render_camera(c2w, K, view.width, view.height, **chunk)["rgb"]

    return render_rgb


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
    teacher: Any
    imitation_step: str
    device: torch.device


def load_parts(
    model_path: str | os.PathLike,
    cameras_json: str | os.PathLike,
    field_path: str | os.PathLike,
    teacher_config=None,
    config: EvaluationConfig = EvaluationConfig(),
    mesh_path: str | os.PathLike | None = None,
    device: str = "auto",
) -> EvaluationParts:
    """Load the scene's test views, the NeRF, the field (and mesh) and the teacher; checks that
    the field imitates ``teacher_config.name``."""
    from san.data.scene import load_scene
    from san.imitation.model import load_imitation
    from san.imitation.render import render_features
    from san.models.nerf import load_nerf
    from san.rendering.mesh_raycast import load_mesh
    from san.teachers import TeacherConfig, teacher_from_config
    from san.utils.device import resolve_device

    dev = resolve_device(device)
    teacher_config = teacher_config or TeacherConfig()
    views = evaluation_views(load_scene(cameras_json), config.render_size, config.max_views)
    nerf = load_nerf(model_path, dev)
    nerf.eval()
    field = load_imitation(field_path, dev)
    trained_with = getattr(field, "metadata", {}).get("teacher")
    if trained_with is not None and trained_with != teacher_config.name:
        raise ValueError(
            f"{field_path}: the field imitates teacher {trained_with!r}, but the config's teacher is {teacher_config.name!r}"
        )
    mesh = None
    if field.mesh_surface:
        if mesh_path is None:
            raise ValueError(f"{field_path}: a mesh-surface field needs the mesh (mesh/mesh_normalized.ply)")
        mesh = load_mesh(mesh_path, dev)
    chunk = {} if config.chunk is None else {"chunk": config.chunk}

    @torch.no_grad()
    def render_feats(view):
        c2w, K = _view_camera(view, dev)
        return render_features(nerf, field, c2w, K, view.width, view.height, mesh=mesh, **chunk)

    return EvaluationParts(
        views,
        rgb_renderer(nerf, config, dev),
        render_feats,
        teacher_from_config(teacher_config, str(dev)),
        IMITATION_MESH if field.mesh_surface else IMITATION_VOLUME,
        dev,
    )


def evaluate_segmentation(
    model_path: str | os.PathLike,
    cameras_json: str | os.PathLike,
    field_path: str | os.PathLike,
    metrics_json: str | os.PathLike,
    clicks_csv: str | os.PathLike,
    figure_png: str | os.PathLike,
    dataset: str,
    scene: str,
    variant: str,
    teacher_config=None,
    config: EvaluationConfig = EvaluationConfig(),
    stats_json: str | os.PathLike | None = None,
    mesh_path: str | os.PathLike | None = None,
    device: str = "auto",
    teacher_timing_json: str | os.PathLike | None = None,
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
        teacher_timing_json: the scene's ``teacher_timing.json`` (rule ``time_teacher``): its RGB,
            teacher-encoding and decoding times are used and only the field is timed here;
            ``None`` times everything in this call.

    Returns:
        The ``metrics.json`` record.
    """
    from types import SimpleNamespace

    from san.teachers import TeacherConfig

    t0 = time.perf_counter()
    teacher_config = teacher_config or TeacherConfig()
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
        teacher, parts.render_rgb, parts.render_features, views, config.grid, shift, config.qualitative_views
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
            "timing: %s from %s, the field timed here on %s", timing_info.name, teacher_timing_json, device_name(dev)
        )
        timing = dict(scene_timing["timing"]) | measure_imitation_timing(
            views[0], parts.render_features, parts.imitation_step, config, dev
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
