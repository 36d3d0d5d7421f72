"""Rules ``evaluate_benchmark_teacher`` (per scene) and ``evaluate_benchmark`` (per scene and
variant): segmentation against ground-truth masks.

Glue only: loads a trained scene, reads its ground-truth layout (:mod:`san.data.gt_layout`) and
runs the protocol of :mod:`san.benchmark` (its docstring is the reference).

* :func:`evaluate_benchmark_teacher` runs it with the teacher on the NeRF's RGB renderings (the
  baseline: it depends on the scene's NeRF and teacher only, so it runs once per scene). Outputs in
  ``results/{dataset}/{scene}/benchmark/teacher_on_rgb/``: ``views.csv`` (the ``teacher`` rows of
  :data:`san.benchmark.VIEW_COLUMNS`), ``masks.npz`` (the predicted mask of every scored view,
  key ``{task}/{view}``, for the qualitative figure) and ``metrics.json`` (``dataset, scene,
  teacher, untrained, teacher_checkpoint_sha256``, ``teacher_on_rgb``: scene figures and
  ``tasks``; ``teacher_iou_vs_gt``, ``teacher_accuracy_vs_gt``; ``config``), written last.
* :func:`evaluate_benchmark` runs it with the imitated features, takes the teacher baseline's
  files when given (``benchmark.teacher_baseline``), then votes the imitation masks of
  ``benchmark.mesh_views`` views onto the extracted mesh and scores the segmented surface against
  each task's ground-truth mesh (when the layout has one).

Outputs of ``evaluate_benchmark`` in ``results/{dataset}/{scene}/benchmark/{variant}/`` (each
written atomically, ``metrics.json`` last):

* ``views.csv``: one row per source, task and view (:data:`san.benchmark.VIEW_COLUMNS`; the
  teacher's rows copied from the baseline's ``views.csv``);
* ``qualitative.png``: per task, the reference click, the teacher mask, the imitation mask and the
  ground truth as outlines on one target view, with the IoUs;
* ``metrics.json``: ``dataset, scene, variant, teacher, untrained``; ``imitation`` and
  ``teacher_on_rgb`` (copied from the baseline's ``metrics.json``; ``null`` without
  ``benchmark.teacher_baseline``): scene figures (``miou``, ``iou_pooled``, ``accuracy``, ...)
  and ``tasks`` (per task: ``iou_per_image_mean``, ``iou_pooled``, ``accuracy_per_image_mean``,
  ``accuracy_pooled``, ``reference_iou``, ``held_out_fraction``, ...); ``mesh_segmentation`` (per
  task surface IoU); ``held_out`` (split of the reference and target views); ``protocol``;
  ``layout``; ``renders``
  (``prerendered``: NeRF renderings read from rule ``render_benchmark_views``'s file,
  ``rendered_here``: those rendered in this job).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from san.benchmark import (
    VIEW_COLUMNS,
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
from san.cameras import Camera
from san.evaluation.config import BenchmarkConfig
from san.utils.io import atomic_path, atomic_write_json

log = logging.getLogger("san")


def benchmark_views(scene) -> dict[str, BenchmarkView]:
    """``{image stem: BenchmarkView}`` of every frame of a :class:`san.data.scene.Scene`."""
    return {
        Path(f.image).stem: BenchmarkView(Path(f.image).stem, i, f.split, f.camera) for i, f in enumerate(scene.frames)
    }


def load_benchmark(layout_dir: str | os.PathLike, cameras: str | os.PathLike):
    """Read a ground-truth layout and check it against a scene, before any rendering.

    Args:
        layout_dir: the layout folder (:mod:`san.data.gt_layout`).
        cameras: the scene's ``poses/cameras.json``.

    Returns:
        ``(layout, scene, views)``: the :class:`~san.data.gt_layout.GroundTruthLayout`, the
        :class:`~san.data.scene.Scene` and :func:`benchmark_views` of it.

    Raises:
        san.data.gt_layout.LayoutError: a bad layout, or a view it names missing from the scene.
    """
    from san.data.gt_layout import read_layout
    from san.data.scene import load_scene

    layout = read_layout(layout_dir)
    scene = load_scene(cameras)
    views = benchmark_views(scene)
    layout.check_views(list(views))
    return layout, scene, views


def mesh_segmentation(
    layout, task, scores, views, mesh, normalization, config: BenchmarkConfig, all_gt_meshes
) -> dict | None:
    """Vote the imitation masks of ``config.mesh_views`` of the task's views onto ``mesh``
    (normalised frame) and score the selection against the task's ground-truth mesh (input frame)."""
    import trimesh

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
    input_cams = [c.with_c2w(normalization.to_input_c2w(c.c2w)) for c in cams]
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


def ground_truth_meshes(layout) -> tuple[dict, dict]:
    """The ground-truth meshes of a layout (:class:`san.data.gt_layout.GroundTruthLayout`), input frame.

    Returns:
        ``(task meshes, all meshes)``: ``{task: trimesh.Trimesh}`` for the tasks with a mesh, and
        those plus the layout's occluders (``{file stem: trimesh.Trimesh}``; a task's own mesh wins
        over an occluder of the same name): every mesh that can hide another in
        :func:`~san.benchmark.observed_faces`, the ``all_gt_meshes`` of :func:`mesh_segmentation`.
    """
    import trimesh

    tasks = {t.task: trimesh.load(layout.root / t.mesh, force="mesh", process=False) for t in layout.tasks if t.mesh}
    if not tasks:
        return {}, {}
    occluders = {Path(o).stem: trimesh.load(layout.root / o, force="mesh", process=False) for o in layout.occluders}
    return tasks, {**tasks, **{k: v for k, v in occluders.items() if k not in tasks}}


def _camera_of(view: BenchmarkView, hw) -> Camera:
    return render_camera(view, (hw[1], hw[0]))


def _run_source(source, layout, views, render_fn, features_fn, decode, config: BenchmarkConfig, on_task=None):
    """The protocol for every task of ``layout`` with one feature source -> ``(per_task, scores)``;
    ``on_task(task, scores)`` runs after each task."""

    def gt_mask(task_name):
        return lambda v: layout.read_mask(task_name, v) if layout.has_mask(task_name, v) else None

    per_task, all_scores = {}, []
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
            point_subset=config.point_subset,
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
        if on_task is not None:
            on_task(task, scores)
    return per_task, all_scores


def evaluate_benchmark_teacher(
    *,
    cameras: str | os.PathLike,
    model: str | os.PathLike,
    layout_dir: str | os.PathLike,
    metrics_json: str | os.PathLike,
    views_csv: str | os.PathLike,
    masks_npz: str | os.PathLike,
    dataset: str,
    scene: str,
    teacher_config=None,
    config: BenchmarkConfig = BenchmarkConfig(),
    device: str = "auto",
    renders: str | os.PathLike | None = None,
) -> dict:
    """The benchmark's teacher-on-RGB baseline of one scene (module docstring, first item).

    Args:
        cameras, model: the scene's ``poses/cameras.json`` and ``nerf/model.pt``.
        layout_dir: the ground-truth layout folder.
        metrics_json, views_csv, masks_npz: the outputs.
        dataset, scene: recorded.
        teacher_config: :class:`san.teachers.TeacherConfig` (``None``: the default teacher).
        config: the ``benchmark`` config section.
        device: ``auto | cpu | cuda[:N]``.
        renders: the scene's ``benchmark/renders.pt`` (rule ``render_benchmark_views``), the same
            NeRF renderings every variant starts from; ``None`` renders everything here.

    Raises:
        san.data.gt_layout.LayoutError: a bad layout or a view missing from the scene (before any
            rendering).
        san.pipeline.render_benchmark_views.BenchmarkRendersError: ``renders`` is unreadable or
            of another NeRF.
    """
    import pandas as pd
    import torch

    from san.trained_scene import camera_renderer, load_trained

    t0 = time.perf_counter()
    layout, _, views = load_benchmark(layout_dir, cameras)
    trained = load_trained(cameras, model, teacher=teacher_config, device=device, given="configured")
    teacher, dev = trained.teacher, trained.device
    nerf = trained.nerf

    render = CameraMemo(camera_renderer(nerf))
    prerendered = 0
    if renders is not None:
        from san.pipeline.render_benchmark_views import load_benchmark_renders

        prerendered = load_benchmark_renders(renders, render, model, dev)
    info = teacher.info
    log.info(
        "evaluate_benchmark_teacher %s/%s: %d task(s) from %s, teacher %s%s on RGB renderings",
        dataset,
        scene,
        len(layout.tasks),
        layout.root,
        info.name,
        " (UNTRAINED)" if info.untrained else "",
    )
    with torch.no_grad():
        per_task, scores = _run_source(
            "teacher",
            layout,
            views,
            render,
            CameraMemo(teacher_features_fn(teacher, render)),
            teacher_decode_fn(teacher),
            config,
        )
    figures = summarize_scene(per_task, scores) | {"tasks": per_task}
    with atomic_path(views_csv) as tmp:
        pd.DataFrame([s.row() for s in scores], columns=list(VIEW_COLUMNS)).to_csv(tmp, index=False)
    masks = {f"{s.task}/{s.view}": np.asarray(s.mask, dtype=bool) for s in scores if s.mask is not None}
    with atomic_path(masks_npz) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **masks)
    record = {
        "dataset": dataset,
        "scene": scene,
        "teacher": info.name,
        "untrained": bool(info.untrained),
        "teacher_checkpoint_sha256": info.checkpoint_sha256,
        "teacher_on_rgb": figures,
        "teacher_iou_vs_gt": figures["miou"],
        "teacher_accuracy_vs_gt": figures["accuracy"],
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "views_csv": Path(views_csv).name,
        "masks": Path(masks_npz).name,
        "renders": {"prerendered": prerendered, "rendered_here": render.misses},
        "wall_s": time.perf_counter() - t0,
    }
    atomic_write_json(metrics_json, record)
    log.info(
        "evaluate_benchmark_teacher %s/%s: teacher mIoU vs GT %s", dataset, scene, _fmt(record["teacher_iou_vs_gt"])
    )
    return record


def _teacher_baseline(metrics_json, views_csv, masks_npz, info) -> tuple[dict, list[dict], dict[str, np.ndarray]]:
    """The baseline's ``(metrics, views rows, masks)``, checked to be the teacher ``info``'s."""
    import pandas as pd

    record = json.loads(Path(metrics_json).read_text())
    made = (record.get("teacher"), record.get("teacher_checkpoint_sha256"))
    if made != (info.name, info.checkpoint_sha256):
        raise ValueError(
            f"{metrics_json}: the teacher baseline was made with teacher {made[0]} (checkpoint {made[1]}), "
            f"not {info.name} (checkpoint {info.checkpoint_sha256}) that the field imitates: rerun evaluate_benchmark_teacher"
        )
    rows = pd.read_csv(views_csv, dtype=str, keep_default_na=False).to_dict("records")  # copied as written
    with np.load(masks_npz) as z:
        masks = {k: z[k] for k in z.files}
    return record, rows, masks


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
    teacher_metrics: str | os.PathLike | None = None,
    teacher_views: str | os.PathLike | None = None,
    teacher_masks: str | os.PathLike | None = None,
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
        teacher_metrics, teacher_views, teacher_masks: the outputs of
            :func:`evaluate_benchmark_teacher` for this scene (all three, or none: no baseline).
        renders: the scene's ``benchmark/renders.pt`` (rule ``render_benchmark_views``): NeRF
            renderings shared by every variant; a camera missing from it is rendered here.
            ``None`` renders everything here.

    Raises:
        san.data.gt_layout.LayoutError: a bad layout or a view missing from the scene (before any
            rendering).
        ValueError: a baseline made with another teacher than the field's.
        san.pipeline.render_benchmark_views.BenchmarkRendersError: ``renders`` is unreadable or
            of another NeRF.
    """
    import pandas as pd
    import torch
    import trimesh

    from san.trained_scene import load_trained, session_parts

    t0 = time.perf_counter()
    mesh_path = Path(mesh)
    layout, _, views = load_benchmark(layout_dir, cameras)
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
    decode = teacher_decode_fn(teacher)
    info = teacher.info
    given = [p is not None for p in (teacher_metrics, teacher_views, teacher_masks)]
    if any(given) and not all(given):
        raise ValueError("evaluate_benchmark: give all of teacher_metrics, teacher_views and teacher_masks, or none")
    baseline = _teacher_baseline(teacher_metrics, teacher_views, teacher_masks, info) if all(given) else None
    sources = ["imitation", "teacher"] if baseline else ["imitation"]
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

    mesh, gt_meshes, all_gt = None, {}, {}
    if config.mesh_views:
        gt_meshes, all_gt = ground_truth_meshes(layout)
    if gt_meshes:
        mesh = trimesh.load(mesh_path, force="mesh", process=False)

    mesh_results = {}

    def vote_on_mesh(task, scores):
        if mesh is not None and task.task in gt_meshes:
            mesh_results[task.task] = mesh_segmentation(
                layout, task, scores, views, mesh, trained.scene.normalization, config, all_gt
            )
            log.info("  mesh %-10s surface IoU %.4f", task.task, mesh_results[task.task]["surface_iou"])

    with torch.no_grad():
        per_task, all_scores = _run_source(
            "imitation", layout, views, render, CameraMemo(parts.features_fn), decode, config, vote_on_mesh
        )
    per_source = {"imitation": summarize_scene(per_task, all_scores) | {"tasks": per_task}}
    teacher_rows, teacher_masks_ = [], {}
    if baseline:
        per_source["teacher"], teacher_rows, teacher_masks_ = baseline[0]["teacher_on_rgb"], baseline[1], baseline[2]

    rows = [s.row() for s in all_scores] + teacher_rows
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
            "point_subset": config.point_subset,
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

    panels = _figure_rows(layout, all_scores, render, views, config, teacher_rows, teacher_masks_)
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


def _figure_rows(
    layout, scores, render, views, config: BenchmarkConfig, teacher_rows=(), teacher_masks=None
) -> list[dict]:
    """Per task (at most ``config.qualitative_tasks``): the reference rendering and click, and the
    target view with the largest ground-truth area, with the teacher (``teacher_rows``: the
    baseline's ``views.csv`` rows, ``teacher_masks``: its masks), imitation and GT masks."""
    teacher_iou = {(r["task"], r["view"]): r["iou"] for r in teacher_rows if r["role"] == "target"}
    teacher_masks = teacher_masks or {}
    rows = []
    for task in layout.tasks[: config.qualitative_tasks]:
        mine = [s for s in scores if s.task == task.task]
        ref = next(s for s in mine if s.source == "imitation" and s.role == "reference")
        targets = [s for s in mine if s.source == "imitation" and s.role == "target"]
        best = max(targets, key=lambda s: (s.gt_area or 0, -targets.index(s)))
        key = (task.task, best.view)
        teacher_mask = teacher_masks.get(f"{task.task}/{best.view}") if key in teacher_iou else None
        ref_cam = _camera_of(views[ref.view], ref.render_mask.shape)
        tgt_cam = _camera_of(views[best.view], best.render_mask.shape)
        rows.append(
            {
                "task": task.task,
                "reference_view": ref.view,
                "reference_image": np.asarray(render(ref_cam)["rgb"].cpu()),
                "reference_prompts": ref.prompt_pixels,
                "reference_mask": ref.render_mask,
                "target_view": best.view,
                "target_held_out": best.held_out,
                "target_image": np.asarray(render(tgt_cam)["rgb"].cpu()),
                "target_prompts": best.prompt_pixels,
                "teacher_mask": teacher_mask,
                "teacher_iou": float(teacher_iou[key]) if teacher_iou.get(key) else None,
                "imitation_mask": best.mask,
                "imitation_iou": None if best.confusion is None else best.confusion.iou,
                "gt_mask": layout.read_mask(task.task, best.view),
            }
        )
    return rows


def read_benchmark_record(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text())
