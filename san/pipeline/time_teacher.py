"""Rule ``time_teacher``: the variant-independent Table 1 timings of one scene, measured once.

RGB rendering by the NeRF, the timing teacher's encoder and one decoder call cost the same for
every ablation variant, and on a CPU the ViT-H encoder alone takes minutes, so they are measured
once per scene on the first held-out view at the protocol resolution (see
:mod:`san.evaluation.timing` for the clock and :func:`~san.evaluation.timing.build_timing_teacher`
for which teacher is timed). ``evaluate_segmentation`` reads the record and times only its field.

Output ``results/{dataset}/{scene}/evaluation/teacher_timing.json`` (written atomically):
``dataset, scene``; ``timing_teacher``, ``timing_teacher_untrained``,
``timing_teacher_checkpoint_sha256``; ``device``; ``view`` (name), ``render_size``,
``image_hw``; ``timing`` (step -> ``median_ms``, every run, warm-up and repeats); ``wall_s``.
"""

from __future__ import annotations

import logging
import os
import time

from san.evaluation.config import EvaluationConfig
from san.evaluation.protocol import evaluation_views
from san.evaluation.timing import build_timing_teacher, device_name, measure_teacher_timing
from san.teachers import TeacherConfig
from san.trained_scene import rgb_renderer
from san.utils.io import atomic_write_json

log = logging.getLogger("san")


def time_teacher(
    model_path: str | os.PathLike,
    cameras_json: str | os.PathLike,
    out_json: str | os.PathLike,
    dataset: str,
    scene: str,
    teacher_config: TeacherConfig | None = None,
    config: EvaluationConfig = EvaluationConfig(),
    device: str = "auto",
) -> dict:
    """Time RGB rendering, teacher encoding and decoding on the scene's first held-out view.

    Args:
        model_path, cameras_json: the NeRF (``nerf/model.pt``) and the scene (``poses/cameras.json``).
        out_json: ``teacher_timing.json`` to write.
        dataset, scene: the wildcards (recorded).
        teacher_config: :class:`san.teachers.TeacherConfig` of the quality teacher (timed when
            ``config.timing_teacher`` is ``None``).
        config: the ``evaluation`` config section (protocol resolution, warm-up and repeats).
        device: ``auto | cpu | cuda[:N]``.

    Returns:
        The record written (module docstring).
    """
    from san.trained_scene import load_trained
    from san.utils.device import resolve_device

    t0 = time.perf_counter()
    dev = resolve_device(device)
    trained = load_trained(
        cameras_json, model_path, teacher=build_timing_teacher(teacher_config, config, dev), device=str(dev)
    )
    view = evaluation_views(trained.scene, config.render_size, 1)[0]
    teacher, nerf = trained.teacher, trained.nerf
    log.info(
        "time_teacher %s/%s: %s%s on %s, view %s at %dx%d",
        dataset,
        scene,
        teacher.info.name,
        " (UNTRAINED)" if teacher.info.untrained else "",
        device_name(dev),
        view.name,
        view.width,
        view.height,
    )
    timing = measure_teacher_timing(view, rgb_renderer(nerf, config, dev), teacher, config, dev)
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
        "timing": timing,
        "wall_s": time.perf_counter() - t0,
    }
    atomic_write_json(out_json, record)
    log.info(
        "time_teacher %s/%s: %s", dataset, scene, ", ".join(f"{k} {v['median_ms']:.1f} ms" for k, v in timing.items())
    )
    return record
