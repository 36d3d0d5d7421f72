"""Rule ``time_teacher``: the scene's Table 1 teacher timings, measured once, without the NeRF.

The timing teacher's encoder and one decoder call cost the same for every ablation variant, and
on a CPU the ViT-H encoder alone takes minutes, so they are measured once per scene (see
:mod:`san.evaluation.timing` for the clock and :func:`~san.evaluation.timing.build_timing_teacher`
for which teacher is timed). The rule needs only ``poses/cameras.json``: the encoder is timed on
the scene's first held-out view as *captured* (its image resized to the protocol resolution), not
on the NeRF's rendering of it. A ViT's cost does not depend on the pixels it is given, and so the
job runs from the start of the workflow, beside NeRF training, instead of after it. The NeRF's
RGB rendering of the same view (``rgb_render``) is timed by ``evaluate_segmentation``, which has
the NeRF loaded anyway.

Output ``results/{dataset}/{scene}/evaluation/teacher_timing.json`` (written atomically):
``dataset, scene``; ``timing_teacher``, ``timing_teacher_untrained``,
``timing_teacher_checkpoint_sha256``; ``device``; ``view`` (name), ``render_size``,
``image_hw``, ``image`` (``captured``: the encoded image is the captured view, resized);
``timing`` (``teacher_encode`` and ``decode``: ``median_ms``, every run, warm-up and repeats);
``wall_s``.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from san.evaluation.config import EvaluationConfig
from san.evaluation.protocol import evaluation_views
from san.evaluation.timing import build_timing_teacher, device_name, measure_encoder_timing
from san.teachers import TeacherConfig
from san.utils.io import atomic_write_json

log = logging.getLogger("san")


def captured_view_image(scene, view) -> np.ndarray:
    """The captured image of an :class:`~san.evaluation.protocol.EvalView` of ``scene``, resized
    (bilinear, PIL) to the view's ``width x height``: ``HxWx3`` float32 in ``[0, 1]``.

    Raises:
        san.data.scene.SceneError: the image file is missing or unreadable (naming it).
    """
    from PIL import Image

    from san.data.images import load_image

    frame = scene.frames[view.index]
    image = load_image(frame.image, scene.source.get("background"))
    if image.shape[:2] != (view.height, view.width):
        pil = Image.fromarray((image * 255.0 + 0.5).astype(np.uint8))
        image = np.asarray(pil.resize((view.width, view.height), Image.BILINEAR), dtype=np.float32) / 255.0
    return image


def time_teacher(
    cameras_json: str | os.PathLike,
    out_json: str | os.PathLike,
    dataset: str,
    scene: str,
    teacher_config: TeacherConfig | None = None,
    config: EvaluationConfig = EvaluationConfig(),
    device: str = "auto",
) -> dict:
    """Time teacher encoding and decoding on the scene's first held-out view (module docstring).

    Args:
        cameras_json: the scene (``poses/cameras.json``); its first test view's image is encoded.
        out_json: ``teacher_timing.json`` to write.
        dataset, scene: the wildcards (recorded).
        teacher_config: :class:`san.teachers.TeacherConfig` of the quality teacher (timed when
            ``config.timing_teacher`` is ``None``).
        config: the ``evaluation`` config section (protocol resolution, warm-up and repeats).
        device: ``auto | cpu | cuda[:N]``.

    Returns:
        The record written (module docstring).

    Raises:
        ValueError: a timing teacher with weights that is not the quality teacher, or a scene
            without test views; ``SceneError``: the view's image is missing (before the teacher is built).
    """
    from san.data.scene import load_scene
    from san.utils.device import resolve_device

    t0 = time.perf_counter()
    dev = resolve_device(device)
    scene_data = load_scene(cameras_json)
    view = evaluation_views(scene_data, config.render_size, 1)[0]
    image = captured_view_image(scene_data, view)
    teacher = build_timing_teacher(teacher_config, config, dev)
    log.info(
        "time_teacher %s/%s: %s%s on %s, captured view %s at %dx%d",
        dataset,
        scene,
        teacher.info.name,
        " (UNTRAINED)" if teacher.info.untrained else "",
        device_name(dev),
        view.name,
        view.width,
        view.height,
    )
    timing = measure_encoder_timing(image, teacher, config, dev)
    record = {
        "dataset": dataset,
        "scene": scene,
        "timing_teacher": teacher.info.name,
        "timing_teacher_untrained": bool(teacher.info.untrained),
        "timing_teacher_checkpoint_sha256": teacher.info.checkpoint_sha256,
        "device": device_name(dev),
        "view": view.name,
        "render_size": config.render_size,
        "image_hw": [view.height, view.width],
        "image": "captured",
        "timing": timing,
        "wall_s": time.perf_counter() - t0,
    }
    atomic_write_json(out_json, record)
    log.info(
        "time_teacher %s/%s: %s", dataset, scene, ", ".join(f"{k} {v['median_ms']:.1f} ms" for k, v in timing.items())
    )
    return record
