"""Rule ``evaluate_benchmark``: segmentation against ground-truth masks, per scene and variant.

Glue only: loads a trained scene, reads its ground-truth layout (:mod:`san.data.gt_layout`) and
runs the protocol of :mod:`san.benchmark` (its docstring is the reference) with the
imitated features and, beside it, with the teacher on the NeRF's RGB renderings; then votes the
imitation masks of ``benchmark.mesh_views`` views onto the extracted mesh and scores the segmented
surface against each task's ground-truth mesh (when the layout has one).

Outputs in ``results/{dataset}/{scene}/benchmark/{variant}/`` (each written atomically,
``metrics.json`` last):

* ``views.csv``: one row per source, task and view (:data:`san.benchmark.VIEW_COLUMNS`);
* ``qualitative.png``: per task, the reference click, the teacher mask, the imitation mask and the
  ground truth as outlines on one target view, with the IoUs;
* ``metrics.json``: ``dataset, scene, variant, teacher, untrained``; ``imitation`` and
  ``teacher_on_rgb`` (``null`` without ``benchmark.teacher_baseline``): scene figures (``miou``, ``iou_pooled``, ``accuracy``, ...) and ``tasks`` (per task:
  ``iou_per_image_mean``, ``iou_pooled``, ``accuracy_per_image_mean``, ``accuracy_pooled``,
  ``reference_iou``, ``held_out_fraction``, ...); ``mesh_segmentation`` (per task surface IoU);
  ``held_out`` (split of the reference and target views); ``protocol``; ``layout``; ``renders``
  (``prerendered``: NeRF renderings read from rule ``render_benchmark_views``'s file,
  ``rendered_here``: those rendered in this job).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from san.benchmark import (
    VIEW_COLUMNS,
    BenchmarkConfig,
    BenchmarkView,
    CameraMemo,
    observed_faces,
    render_camera,
    run_task,
    segment_mesh,
    spread_views,
    summarize_scene,
    summarize_task,
    surface_iou,
    teacher_decode_fn,
    teacher_features_fn,
)
from san.utils.io import atomic_path, atomic_write_json

log = logging.getLogger("san")


def benchmark_views(scene) -> dict[str, BenchmarkView]:
    """``{image stem: BenchmarkView}`` of every frame of a :class:`san.data.scene.Scene`."""
    return {
        Path(f.image).stem: BenchmarkView(
            Path(f.image).stem,
            i,
            f.split,
            np.asarray(f.c2w, dtype=np.float64),
            np.asarray(f.K, dtype=np.float64),
            int(f.width),
            int(f.height),
        )
        for i, f in enumerate(scene.frames)
    }


def mesh_segmentation(
    layout, task, scores, views, mesh, normalization, config: BenchmarkConfig, all_gt_meshes
) -> dict | None:
    """Vote the imitation masks of ``config.mesh_views`` of the task's views onto ``mesh``
    (normalised frame) and score the selection against the task's ground-truth mesh (input frame)."""
    import trimesh

    from san.interaction.session import Camera

    if task.mesh is None or config.mesh_views == 0 or mesh is None:
        return None
    scored = {s.view: s for s in scores if s.render_mask is not None}
    chosen = [scored[n] for n in spread_views(list(scored), views, config.mesh_views)]
    cams = [_camera_of(views[s.view], s.render_mask.shape) for s in chosen]
    selected = segment_mesh(mesh, cams, [s.render_mask for s in chosen], vote_threshold=config.vote_threshold)
    segment = mesh.submesh([np.flatnonzero(selected)], append=True) if selected.any() else None
    if segment is not None:
        segment.vertices = normalization.to_input_points(np.asarray(segment.vertices))
    target = all_gt_meshes[task.task]
    input_cams = [Camera(normalization.to_input_c2w(c.c2w), c.K, c.width, c.height) for c in cams]
    names = list(all_gt_meshes)
    seen = dict(zip(names, observed_faces([all_gt_meshes[n] for n in names], input_cams)))[task.task]
    observed = target.submesh([np.flatnonzero(seen)], append=True) if seen.any() else trimesh.Trimesh()
    distance = config.surface_distance or layout.surface_distance
    if distance is None:
        lo, hi = (
            np.array([m.bounds for m in all_gt_meshes.values()]).min(0)[0],
            np.array([m.bounds for m in all_gt_meshes.values()]).max(0)[1],
        )
        distance = 0.01 * float(np.linalg.norm(hi - lo))
    result = surface_iou(segment, target, observed, distance, config.surface_samples)
    result.update(
        views=[s.view for s in chosen],
        faces_selected=int(selected.sum()),
        observed_fraction=float(observed.area / target.area) if target.area else None,
        surface_distance=float(distance),
    )
    return result


def _camera_of(view: BenchmarkView, hw) -> Any:
    return render_camera(view, (hw[1], hw[0]))


def evaluate_benchmark(
    *,
    cameras: str | os.PathLike,
    model: str | os.PathLike,
    field: str | os.PathLike,
    mesh: str | os.PathLike,
    layout_dir: str | os.PathLike,
    metrics_json: str | os.PathLike,
    views_csv: str | os.PathLike,
    figure_png: str | os.PathLike,
    dataset: str,
    scene: str,
    variant: str,
    teacher_config=None,
    config: BenchmarkConfig = BenchmarkConfig(),
    device: str = "auto",
    renders: str | os.PathLike | None = None,
) -> dict:
    """Run the benchmark on one trained scene and variant and write the outputs (module docstring).

    Args:
        cameras, model, field, mesh: the trained scene's ``poses/cameras.json``, ``nerf/model.pt``,
            ``imitation/{variant}/field.pt`` and ``mesh/mesh_normalized.ply`` (loaded through
            :func:`san.trained_scene.load_trained`, which checks the teacher against the field).
        layout_dir: the ground-truth layout folder.
        metrics_json, views_csv, figure_png: the outputs.
        dataset, scene, variant: recorded.
        teacher_config: :class:`san.teachers.TeacherConfig` of the teacher the field imitates.
        config: the ``benchmark`` config section.
        device: ``auto | cpu | cuda[:N]``.
        renders: the scene's ``benchmark/renders.pt`` (rule ``render_benchmark_views``): NeRF
            renderings shared by every variant; a camera missing from it is rendered here.
            ``None`` renders everything here.

    Raises:
        san.data.gt_layout.LayoutError: a bad layout or a view missing from the scene (before any
            rendering).
        san.pipeline.render_benchmark_views.BenchmarkRendersError: ``renders`` is unreadable or
            of another NeRF.
    """
    import pandas as pd
    import torch
    import trimesh

    from san.data.gt_layout import read_layout
    from san.data.scene import load_scene
    from san.trained_scene import load_trained, session_parts

    t0 = time.perf_counter()
    mesh_path = Path(mesh)
    layout = read_layout(layout_dir)
    views = benchmark_views(load_scene(cameras))
    layout.check_views(list(views))
    trained = load_trained(
        cameras, model, field=field, mesh=mesh, teacher=teacher_config, device=device, given="configured"
    )
    parts = session_parts(trained)
    teacher = trained.teacher
    render = CameraMemo(parts.render_fn)
    prerendered = 0
    if renders is not None:
        from san.pipeline.render_benchmark_views import load_benchmark_renders

        prerendered = load_benchmark_renders(renders, render, model, trained.device)
    sources = {"imitation": (render, CameraMemo(parts.features_fn))}
    if config.teacher_baseline:
        sources["teacher"] = (render, CameraMemo(teacher_features_fn(teacher, render)))
    decode = teacher_decode_fn(teacher)
    info = teacher.info
    log.info(
        "evaluate_benchmark %s/%s [%s]: %d task(s) from %s, teacher %s%s, sources %s",
        dataset,
        scene,
        variant,
        len(layout.tasks),
        layout.root,
        info.name,
        " (UNTRAINED)" if info.untrained else "",
        list(sources),
    )

    mesh = None
    gt_meshes = {
        t.task: trimesh.load(layout.root / t.mesh, force="mesh", process=False) for t in layout.tasks if t.mesh
    }
    if gt_meshes and config.mesh_views:
        mesh = trimesh.load(mesh_path, force="mesh", process=False)
        occluders = {Path(o).stem: trimesh.load(layout.root / o, force="mesh", process=False) for o in layout.occluders}
        all_gt = {**gt_meshes, **{k: v for k, v in occluders.items() if k not in gt_meshes}}

    def gt_mask(task_name):
        return lambda v: layout.read_mask(task_name, v) if layout.has_mask(task_name, v) else None

    all_scores, per_source, mesh_results = [], {}, {}
    with torch.no_grad():
        for source, (render_fn, features_fn) in sources.items():
            per_task = {}
            for task in layout.tasks:
                scores = run_task(
                    task,
                    views,
                    gt_mask(task.task),
                    render_fn,
                    features_fn,
                    decode,
                    source=source,
                    max_size=config.max_size,
                    propagation=config.propagation,
                    chain_points=config.chain_points,
                    max_points=config.max_points,
                    chain_max_area=config.chain_max_area,
                )
                per_task[task.task] = summarize_task(scores) | {
                    "reference_view": task.reference_view,
                    "reference_split": views[task.reference_view].split,
                }
                all_scores += scores
                log.info(
                    "  %s %-10s mIoU %.4f pooled %.4f acc %.4f (ref IoU %s, %d/%d targets held out)",
                    source,
                    task.task,
                    per_task[task.task]["iou_per_image_mean"],
                    per_task[task.task]["iou_pooled"],
                    per_task[task.task]["accuracy_per_image_mean"],
                    _fmt(per_task[task.task]["reference_iou"]),
                    per_task[task.task]["held_out_targets"],
                    len(task.targets),
                )
                if source == "imitation" and mesh is not None and task.task in gt_meshes:
                    mesh_results[task.task] = mesh_segmentation(
                        layout, task, scores, views, mesh, trained.scene.normalization, config, all_gt
                    )
                    log.info("  mesh %-10s surface IoU %.4f", task.task, mesh_results[task.task]["surface_iou"])
            per_source[source] = summarize_scene(per_task, [s for s in all_scores if s.source == source]) | {
                "tasks": per_task
            }

    rows = [s.row() for s in all_scores]
    with atomic_path(views_csv) as tmp:
        pd.DataFrame(rows, columns=list(VIEW_COLUMNS)).to_csv(tmp, index=False)
    record = {
        "dataset": dataset,
        "scene": scene,
        "variant": variant,
        "teacher": info.name,
        "untrained": bool(info.untrained),
        "teacher_checkpoint_sha256": info.checkpoint_sha256,
        "imitation": per_source["imitation"],
        "teacher_on_rgb": per_source.get("teacher"),
        "iou_vs_gt": per_source["imitation"]["miou"],
        "iou_pooled_vs_gt": per_source["imitation"]["iou_pooled"],
        "accuracy_vs_gt": per_source["imitation"]["accuracy"],
        "teacher_iou_vs_gt": per_source["teacher"]["miou"] if "teacher" in per_source else None,
        "teacher_accuracy_vs_gt": per_source["teacher"]["accuracy"] if "teacher" in per_source else None,
        "mesh_segmentation": {"views": config.mesh_views, "tasks": mesh_results} if mesh_results else None,
        "mesh_surface_iou": float(np.mean([m["surface_iou"] for m in mesh_results.values()])) if mesh_results else None,
        "held_out": {
            "targets_held_out": int(
                sum(s.held_out for s in all_scores if s.role == "target" and s.source == "imitation")
            ),
            "targets": int(sum(1 for s in all_scores if s.role == "target" and s.source == "imitation")),
            "reference_splits": sorted({views[t.reference_view].split for t in layout.tasks}),
            "note": "test views were held out of NeRF training and of feature imitation (cache: training views and views interpolated between them)",
        },
        "protocol": {
            "resolution": "annotation (each view's ground-truth mask size)"
            if config.max_size is None
            else f"rendered at longest side <= {config.max_size} px, masks resized (nearest) to the annotation size",
            "cameras": "pinhole, lens distortion ignored (undistorted rendering)",
            "single_click": "multimask_output=True, best predicted score",
            "tracking": "prompts lifted with the rendered depth, kept where they pass the depth test (san.interaction.tracking)",
            "propagation": config.propagation
            + (f" ({config.chain_points} points added per visited view)" if config.propagation == "chain" else ""),
            "max_points": config.max_points,
            "iou": "per-image mean (iou_per_image_mean, 'mIoU') and pooled (iou_pooled)",
            "empty": "both empty -> IoU 1.0",
        },
        "layout": {
            "path": str(layout.root),
            "name": layout.name,
            "source": layout.source,
            "prompt_rules": sorted({t.prompt_rule for t in layout.tasks}),
        },
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "renders": {"prerendered": prerendered, "rendered_here": render.misses},
        "views_csv": Path(views_csv).name,
        "qualitative": Path(figure_png).name,
    }
    from san.report.figures import benchmark_figure

    panels = _figure_rows(layout, all_scores, render, views, config)
    label = "UNTRAINED teacher (random weights: masks are not SAM's) " if info.untrained else "teacher "
    title = f"{dataset}/{scene} [{variant}], {label}{info.name}: mIoU vs GT imitation {_fmt(record['iou_vs_gt'])}" + (
        f", teacher on RGB {_fmt(record['teacher_iou_vs_gt'])}" if record["teacher_iou_vs_gt"] is not None else ""
    )
    benchmark_figure(panels, title, figure_png)
    record["wall_s"] = time.perf_counter() - t0
    atomic_write_json(metrics_json, record)
    log.info(
        "evaluate_benchmark %s/%s [%s]: mIoU vs GT %s (teacher %s), accuracy %s, mesh surface IoU %s (%.1f s)",
        dataset,
        scene,
        variant,
        _fmt(record["iou_vs_gt"]),
        _fmt(record["teacher_iou_vs_gt"]),
        _fmt(record["accuracy_vs_gt"]),
        _fmt(record["mesh_surface_iou"]),
        record["wall_s"],
    )
    return record


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _figure_rows(layout, scores, render, views, config: BenchmarkConfig) -> list[dict]:
    """Per task (at most ``config.qualitative_tasks``): the reference rendering and click, and the
    target view with the largest ground-truth area, with the teacher, imitation and GT masks."""
    rows = []
    for task in layout.tasks[: config.qualitative_tasks]:
        mine = [s for s in scores if s.task == task.task]
        ref = next(s for s in mine if s.source == "imitation" and s.role == "reference")
        targets = [s for s in mine if s.source == "imitation" and s.role == "target"]
        best = max(targets, key=lambda s: (s.gt_area or 0, -targets.index(s)))
        teacher = next((s for s in mine if s.source == "teacher" and s.view == best.view), None)
        ref_cam = _camera_of(views[ref.view], ref.render_mask.shape)
        tgt_cam = _camera_of(views[best.view], best.render_mask.shape)
        rows.append(
            {
                "task": task.task,
                "reference_view": ref.view,
                "reference_image": np.asarray(
                    render(ref_cam.c2w, ref_cam.K, ref_cam.width, ref_cam.height)["rgb"].cpu()
                ),
                "reference_prompts": ref.prompt_pixels,
                "reference_mask": ref.render_mask,
                "target_view": best.view,
                "target_held_out": best.held_out,
                "target_image": np.asarray(render(tgt_cam.c2w, tgt_cam.K, tgt_cam.width, tgt_cam.height)["rgb"].cpu()),
                "target_prompts": best.prompt_pixels,
                "teacher_mask": None if teacher is None else teacher.mask,
                "teacher_iou": None if teacher is None or teacher.confusion is None else teacher.confusion.iou,
                "imitation_mask": best.mask,
                "imitation_iou": None if best.confusion is None else best.confusion.iou,
                "gt_mask": layout.read_mask(task.task, best.view),
            }
        )
    return rows


def read_benchmark_record(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text())
