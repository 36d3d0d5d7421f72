"""Inference timing for Table 1: per-step medians and the frame rate of both pipelines.

Steps (names used in ``metrics.json["timing_ms"]`` and the report):

* ``rgb_render``: NeRF rendering of one view at the protocol resolution.
* ``teacher_encode``: the timing teacher's encoder on that rendering (the cost imitation removes).
* ``imitation_encode_volume``: the feature field's volumetric rendering of the view's features.
* ``imitation_encode_mesh``: the feature field evaluated at one mesh-surface point per pixel.
* ``decode``: the decoder on one view's features with one click.

Frame rates (``metrics.json["fps"]``), one interaction step = one rendered view and its mask:

* ``original = 1000 / (rgb_render + teacher_encode + decode)``
* ``imitation = 1000 / (rgb_render + imitation_encode + decode)`` with the variant's imitation
  encoding (mesh surface for the ``mesh`` variant, volumetric otherwise); ``imitation_volume`` and
  ``imitation_mesh`` give both when both were timed.

Every measurement synchronises the device before starting and before stopping the clock. On a
CPU the ViT-H encoder takes about a minute per image, so its warm-up and repeats are separate
settings; with ``warmup=0, repeats=1`` the single run is *not* warmed up (first-call allocations
are included) and the reported number is an upper bound.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from san.evaluation.config import EvaluationConfig
from san.evaluation.protocol import click_grid, decode_click, image_batch
from san.utils.device import synchronize

RGB_RENDER = "rgb_render"
TEACHER_ENCODE = "teacher_encode"
IMITATION_VOLUME = "imitation_encode_volume"
IMITATION_MESH = "imitation_encode_mesh"
DECODE = "decode"
STEPS = (RGB_RENDER, TEACHER_ENCODE, IMITATION_VOLUME, IMITATION_MESH, DECODE)


def time_fn(
    fn: Callable[[], object], warmup: int = 3, repeats: int = 10, device: torch.device | str | None = None
) -> dict:
    """Time ``fn()`` (no arguments) under ``torch.no_grad``.

    Args:
        fn: the work to time; its result is discarded.
        warmup: untimed calls first (``>= 0``).
        repeats: timed calls (``>= 1``).
        device: the device ``fn`` runs on; CUDA is synchronised around every timed call.

    Returns:
        ``{"median_ms": float, "all": [ms per timed call], "warmup": int, "repeats": int}``.
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"time_fn: need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    times = []
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        synchronize(device)
        for _ in range(repeats):
            synchronize(device)
            t0 = time.perf_counter()
            fn()
            synchronize(device)
            times.append((time.perf_counter() - t0) * 1000.0)
    return {"median_ms": float(np.median(times)), "all": times, "warmup": int(warmup), "repeats": int(repeats)}


def time_steps(
    steps: Mapping[str, Callable[[], object]],
    warmup: int,
    repeats: int,
    device: torch.device | str | None = None,
    overrides: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, dict]:
    """:func:`time_fn` for each named step; ``overrides[name] = (warmup, repeats)`` for costly ones."""
    overrides = overrides or {}
    out = {}
    for name, fn in steps.items():
        w, r = overrides.get(name, (warmup, repeats))
        out[name] = time_fn(fn, w, r, device)
    return out


def pipeline_fps(timing_ms: Mapping[str, float], imitation_step: str = IMITATION_VOLUME) -> dict[str, float]:
    """Frames per second of both pipelines from per-step medians (see the module docstring).

    Args:
        timing_ms: step name -> median milliseconds; needs ``rgb_render``, ``teacher_encode``,
            ``decode`` and ``imitation_step``.
        imitation_step: the imitation encoding of this variant.
    """
    base = timing_ms[RGB_RENDER] + timing_ms[DECODE]
    fps = {
        "original": 1000.0 / (base + timing_ms[TEACHER_ENCODE]),
        "imitation": 1000.0 / (base + timing_ms[imitation_step]),
    }
    for key, step in (("imitation_volume", IMITATION_VOLUME), ("imitation_mesh", IMITATION_MESH)):
        if step in timing_ms:
            fps[key] = 1000.0 / (base + timing_ms[step])
    fps["speedup"] = fps["imitation"] / fps["original"]
    return fps


def click_latency(
    render_rgb: Callable[[], torch.Tensor],
    encode: Callable[[torch.Tensor], object],
    render_features: Callable[[], object],
    decode: Callable[[object], object],
    warmup: int,
    repeats: int,
    device: torch.device | str | None = None,
    decode_imitation: Callable[[object], object] | None = None,
) -> dict:
    """Click-to-mask latency of both pipelines, each timed end to end as one call.

    * teacher: ``decode(encode(render_rgb()))`` (the view must be rendered and encoded anew);
    * imitation: ``decode_imitation(render_features())``; ``decode_imitation`` defaults to
      ``decode`` (give it when the timed encoder is not the teacher the field imitates).

    Returns:
        ``{"teacher": time_fn result, "imitation": time_fn result, "ratio": teacher / imitation
        median}``.
    """
    teacher = time_fn(lambda: decode(encode(render_rgb())), warmup, repeats, device)
    decode_imitation = decode_imitation or decode
    imitation = time_fn(lambda: decode_imitation(render_features()), warmup, repeats, device)
    return {"teacher": teacher, "imitation": imitation, "ratio": teacher["median_ms"] / imitation["median_ms"]}


def measure_encoder_timing(image, timing_teacher, config: EvaluationConfig, device: torch.device) -> dict[str, dict]:
    """Time the timing teacher's encoder on ``image`` (``HxWx3`` float in ``[0, 1]``) and its
    decoder on its own features with one click at the image centre (see
    :mod:`san.evaluation.timing`). The encoder runs only as often as its warm-up and repeats say
    (on a CPU, ViT-H takes about a minute per call): the decoder reuses its last output.

    Returns:
        ``{"teacher_encode": ..., "decode": ...}`` (:func:`time_fn` results).
    """
    batch = image_batch(image)
    h, w = int(batch.shape[-2]), int(batch.shape[-1])
    last: dict[str, Any] = {}

    def encode():
        last["features"] = timing_teacher.encode(batch)

    encoded = time_steps({TEACHER_ENCODE: encode}, config.timing_encode_warmup, config.timing_encode_repeats, device)
    click = click_grid(w, h, 1)[0]
    decoded = time_steps(
        {DECODE: lambda: decode_click(timing_teacher, last["features"], click, (h, w))},
        config.timing_warmup,
        config.timing_repeats,
        device,
    )
    return {TEACHER_ENCODE: encoded[TEACHER_ENCODE], DECODE: decoded[DECODE]}


def measure_render_timing(
    view, render_rgb_fn: Callable[[Any], Any], config: EvaluationConfig, device: torch.device
) -> dict[str, dict]:
    """Time the NeRF's RGB rendering of ``view``: ``{"rgb_render": ...}``."""
    return time_steps({RGB_RENDER: lambda: render_rgb_fn(view)}, config.timing_warmup, config.timing_repeats, device)


def measure_teacher_timing(
    view,
    render_rgb_fn: Callable[[Any], Any],
    timing_teacher,
    config: EvaluationConfig,
    device: torch.device,
) -> dict[str, dict]:
    """Time the variant-independent Table 1 steps on one view: RGB rendering, then the timing
    teacher's encoder and decoder on that rendering (:func:`measure_encoder_timing`)."""
    encoder = measure_encoder_timing(render_rgb_fn(view), timing_teacher, config, device)
    return measure_render_timing(view, render_rgb_fn, config, device) | encoder


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


def device_name(device: torch.device) -> str:
    """``"cpu"`` or the GPU's name (what Table 1's ``device`` column shows)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"
