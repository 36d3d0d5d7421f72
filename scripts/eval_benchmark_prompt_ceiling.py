"""The decoder's own ceiling on a ground-truth benchmark: every view prompted from its own ground truth.

:func:`san.benchmark.run_task` carries one click from the reference view to the targets through
3D tracking; what a target view's mask can be is then bounded twice: by the harness (tracking,
measured with a perfect segmenter by ``scripts/eval_benchmark_oracle.py``) and by the decoder
given the features of that view. This script measures the second bound: in every view a task
scores (reference and targets), the decoder gets prompts made from that view's *ground-truth*
mask, so no tracking error is left. Prompt kinds (:func:`gt_prompt`):

* ``click``: one positive click at :func:`san.data.gt_layout.mask_to_click` (the pixel deepest
  inside the mask);
* ``points``: ``max_points`` (8) positive points, :func:`san.data.gt_layout.mask_to_points` (the
  click, then farthest-point sampling over the mask's interior): what a chain view hands the
  decoder at most, placed ideally;
* ``box``: the tight box of the mask (corners, pixels);
* ``box_points``: the box and the ``points``.

Decoding is the protocol's own (:func:`san.benchmark.teacher_decode_fn`: a lone positive point
asks for several masks; the best-scored mask is kept, as :meth:`SegmentationSession.predict`
does). A view whose ground truth is empty (the object hidden) gets no prompt and an empty mask,
as the protocol scores it. Each kind runs with three feature sources: the protocol's two
(:mod:`san.benchmark`, step 4), ``teacher`` (the teacher's encoder on the NeRF's RGB rendering of
the view) and ``imitation`` (the feature field of ``--variant``), and ``teacher_photo`` (the
teacher's encoder on the view's own image file, resized bilinearly to the annotation size when
it differs): the gap between ``teacher_photo`` and ``teacher`` is what the NeRF's rendering costs
the teacher. Renderings are at the annotation resolution; masks are scored there. Per source and kind: per-object ``miou`` (:func:`summarize`: mean over tasks of
the mean IoU over the task's *target* views, the protocol's ``miou``) and the same per task.

Mesh segmentation from those masks: where the task has a ground-truth mesh, the masks of the same
``benchmark.mesh_views`` views the rule picks (:func:`san.benchmark.spread_views` over the
reference and targets) are voted onto the scene's extracted mesh and scored by surface IoU,
exactly as rule ``evaluate_benchmark`` does (:func:`san.pipeline.evaluate_benchmark.mesh_segmentation`,
default :class:`~san.evaluation.config.BenchmarkConfig`).

Usage: ``python scripts/eval_benchmark_prompt_ceiling.py --scene-dir results/demo/demo
--layout results/demo/demo/benchmark_gt --out ceiling.json [--variant full] [--threads 1]``
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from types import SimpleNamespace

import numpy as np
import torch
import trimesh

from san.benchmark import CameraMemo, confusion, render_camera, teacher_decode_fn, teacher_features_fn
from san.data.gt_layout import mask_to_click, mask_to_points
from san.evaluation.config import BenchmarkConfig
from san.evaluation.masks import resize_mask
from san.pipeline.evaluate_benchmark import ground_truth_meshes, load_benchmark, mesh_segmentation
from san.teachers.base import Prompts
from san.trained_scene import load_trained_scene, session_parts
from san.utils.io import atomic_write_json

PROMPTS = ("click", "points", "box", "box_points")


def gt_prompt(kind: str, mask: np.ndarray, max_points: int = BenchmarkConfig().max_points) -> Prompts:
    """The prompts of ``kind`` (:data:`PROMPTS`, module docstring) made from ``mask`` (``HxW`` bool,
    not empty): points ``(x, y)`` at pixel centres, the box ``(x0, y0, x1, y1)`` at pixel corners."""
    if kind not in PROMPTS:
        raise ValueError(f"prompt kind {kind!r} is not one of {PROMPTS}")
    box = None
    if kind.startswith("box"):
        ys, xs = np.nonzero(mask)
        box = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
    if kind == "box":
        return Prompts(box=box)
    pts = np.array([mask_to_click(mask)]) if kind == "click" else mask_to_points(mask, max_points)
    return Prompts(torch.as_tensor(pts, dtype=torch.float32), torch.ones(len(pts), dtype=torch.int64), box)


def summarize(rows: Sequence[Mapping], tasks: Sequence[str]) -> dict:
    """``{"source/prompt": {"miou", "tasks": {task: mean target IoU}}}`` of the score rows (keys
    ``task, role, source, prompt, iou``); reference rows are not counted, as in the protocol."""
    out: dict = {}
    for key in dict.fromkeys(f"{r['source']}/{r['prompt']}" for r in rows):
        per_task = {}
        for task in tasks:
            ious = [
                r["iou"]
                for r in rows
                if r["task"] == task and f"{r['source']}/{r['prompt']}" == key and r["role"] == "target"
            ]
            if ious:
                per_task[task] = float(np.mean(ious))
        out[key] = {"miou": float(np.mean(list(per_task.values()))) if per_task else None, "tasks": per_task}
    return out


def mesh_ceiling(scene_dir: str, layout, views, normalization, masks: Mapping[tuple, np.ndarray]) -> dict:
    """``{"source/prompt": {task: mesh_segmentation result}}`` of ``masks`` (keyed ``(task, source,
    prompt, view)``, reference first) voted onto the scene mesh (module docstring)."""
    gt_meshes, all_gt = ground_truth_meshes(layout)
    if not gt_meshes:
        return {}
    mesh = trimesh.load(f"{scene_dir}/mesh/mesh_normalized.ply", force="mesh", process=False)
    grouped: dict = {}
    for (task_name, source, kind, view), mask in masks.items():
        grouped.setdefault(f"{source}/{kind}", {}).setdefault(task_name, []).append(
            SimpleNamespace(view=view, render_mask=mask)
        )
    tasks = {t.task: t for t in layout.tasks if t.task in gt_meshes}
    config = BenchmarkConfig()
    return {
        key: {
            name: mesh_segmentation(layout, tasks[name], scored, views, mesh, normalization, config, all_gt)
            for name, scored in per_task.items()
            if name in tasks
        }
        for key, per_task in grouped.items()
    }


@torch.no_grad()
def photo_features(teacher, image_path: str, camera) -> list[torch.Tensor]:
    """The teacher's encoder on the image file ``image_path`` (RGB), resized bilinearly to the
    ``camera``'s ``width x height`` when it differs."""
    from PIL import Image

    from san.evaluation.protocol import image_batch

    with Image.open(image_path) as im:
        im = im.convert("RGB")
        if im.size != (camera.width, camera.height):
            im = im.resize((camera.width, camera.height), Image.BILINEAR)
        rgb = np.asarray(im, dtype=np.float32) / 255.0
    return list(teacher.encode(image_batch(rgb)))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scene-dir", required=True)
    p.add_argument("--layout", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--variant", default="full")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    layout, scene, views = load_benchmark(args.layout, f"{args.scene_dir}/poses/cameras.json")
    trained = load_trained_scene(args.scene_dir, args.variant, "cpu")
    parts = session_parts(trained)
    teacher = trained.teacher
    decode = teacher_decode_fn(teacher)
    render = CameraMemo(parts.render_fn)
    on_rgb, imitated = CameraMemo(teacher_features_fn(teacher, render)), CameraMemo(parts.features_fn)
    photos: dict = {}  # a view's image is encoded once, whichever tasks score it

    def on_photo(name, cam):
        key = (name, cam.width, cam.height)
        if key not in photos:
            photos[key] = photo_features(teacher, scene.frames[views[name].index].image, cam)
        return photos[key]

    sources = {
        "teacher": lambda name, cam: on_rgb(cam),
        "imitation": lambda name, cam: imitated(cam),
        "teacher_photo": on_photo,
    }
    rows, masks = [], {}
    for task in layout.tasks:
        for name in [task.reference_view, *task.targets]:
            if not layout.has_mask(task.task, name):
                continue
            gt = layout.read_mask(task.task, name)
            cam = render_camera(views[name], (gt.shape[1], gt.shape[0]))
            visible = bool(gt.any())
            for source, features_fn in sources.items():
                feats = features_fn(name, cam) if visible else None
                for kind in PROMPTS:
                    if visible:
                        out_masks, scores = decode(feats, gt_prompt(kind, gt), (cam.height, cam.width))
                        best = int(torch.as_tensor(scores).reshape(-1).argmax())
                        mask = resize_mask(torch.as_tensor(out_masks)[best].cpu().numpy(), (gt.shape[1], gt.shape[0]))
                    else:
                        mask = np.zeros_like(gt, dtype=bool)
                    masks[(task.task, source, kind, name)] = mask
                    rows.append(
                        {
                            "task": task.task,
                            "view": name,
                            "role": "reference" if name == task.reference_view else "target",
                            "source": source,
                            "prompt": kind,
                            "iou": confusion(mask, gt).iou,
                        }
                    )
    summary = summarize(rows, [t.task for t in layout.tasks])
    mesh = mesh_ceiling(args.scene_dir, layout, views, scene.normalization, masks)
    for key, per_task in mesh.items():
        summary[key]["mesh_segmentation"] = per_task
    report = {
        "what": "decoder ceiling: every view prompted from its own ground-truth mask (no tracking)",
        "scene_dir": args.scene_dir,
        "variant": args.variant,
        "teacher": teacher.info.name,
        "teacher_kind": teacher.info.kind,
        "max_points": BenchmarkConfig().max_points,
        "summary": summary,
        "views": rows,
    }
    atomic_write_json(args.out, report)
    print(json.dumps({k: round(v["miou"], 4) for k, v in summary.items() if v["miou"] is not None}))
    print(
        json.dumps(
            {
                k: {t: round(m["surface_iou"], 3) for t, m in v.get("mesh_segmentation", {}).items()}
                for k, v in summary.items()
            }
        )
    )
    return report


if __name__ == "__main__":
    main()
