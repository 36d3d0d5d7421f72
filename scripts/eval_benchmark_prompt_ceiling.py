"""The decoder's own ceiling on a ground-truth benchmark: every target view prompted from its ground truth.

:func:`san.benchmark.run_task` carries one click from the reference view to the targets through
3D tracking; what a target view's mask can be is then bounded twice: by the harness (tracking,
measured with a perfect segmenter by ``scripts/eval_benchmark_oracle.py``) and by the decoder
given the features of that view. This script measures the second bound: in every view a task
scores (reference and targets), the decoder gets a prompt made from that view's *ground-truth* mask,
so no tracking error is left:

* ``click``: one positive click at :func:`san.data.gt_layout.mask_to_click` (the pixel deepest
  inside the mask), decoded with ``multimask_output=True`` and the best-scored candidate (SAM's
  convention for one click, as the protocol decodes a lone click);
* ``box``: the tight box of the mask (corners, pixels), one mask.

Each is run with two feature sources, as the protocol does (:mod:`san.benchmark`, step 4):
``teacher`` (the teacher's encoder on the NeRF's RGB rendering of the view) and ``imitation`` (the
feature field of ``--variant``). Renderings are at the annotation resolution; masks are scored
there. Per source and prompt: per-object mIoU (mean over tasks of the per-view mean IoU over the
task's target views, the protocol's ``miou``), and the same per task.

No propagation reaches these figures: a protocol that tracks one click cannot score above the
``box`` figure unless its tracked prompts beat a tight ground-truth box.

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
from types import SimpleNamespace

import numpy as np
import torch

from san.benchmark import CameraMemo, confusion, render_camera, teacher_features_fn
from san.data.gt_layout import mask_to_click, read_layout
from san.data.scene import load_scene
from san.evaluation.config import BenchmarkConfig
from san.evaluation.masks import resize_mask
from san.pipeline.evaluate_benchmark import benchmark_views
from san.teachers.base import Prompts
from san.trained_scene import load_trained_scene, session_parts
from san.utils.io import atomic_write_json

PROMPTS = ("click", "box")


def gt_prompt(kind: str, mask: np.ndarray) -> tuple[Prompts, bool]:
    """``(prompts, multimask_output)`` of ``kind`` (``click`` / ``box``) made from ``mask`` (``HxW`` bool)."""
    if kind == "click":
        return Prompts(torch.tensor([mask_to_click(mask)]), torch.ones(1, dtype=torch.int64)), True
    ys, xs = np.nonzero(mask)
    box = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
    return Prompts(box=box), False


def mesh_ceiling(scene_dir, layout, views, normalization, masks) -> dict:
    """``{"source/prompt": {task: surface IoU}}`` of the masks voted onto the scene mesh (module docstring)."""
    import trimesh

    from san.pipeline.evaluate_benchmark import mesh_segmentation

    with_mesh = [t for t in layout.tasks if t.mesh]
    if not with_mesh:
        return {}
    mesh = trimesh.load(f"{scene_dir}/mesh/mesh_normalized.ply", force="mesh", process=False)
    gt = {t.task: trimesh.load(layout.root / t.mesh, force="mesh", process=False) for t in with_mesh}
    gt.update(
        {
            o.split("/")[-1].removesuffix(".ply"): trimesh.load(layout.root / o, force="mesh", process=False)
            for o in layout.occluders
        }
    )
    out: dict = {}
    for (task_name, source, kind, view), mask in masks.items():
        out.setdefault(f"{source}/{kind}", {}).setdefault(task_name, []).append(
            SimpleNamespace(view=view, render_mask=mask)
        )
    config = BenchmarkConfig()
    tasks = {t.task: t for t in with_mesh}
    return {
        key: {
            name: mesh_segmentation(layout, tasks[name], scored, views, mesh, normalization, config, gt)["surface_iou"]
            for name, scored in per_task.items()
            if name in tasks
        }
        for key, per_task in out.items()
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scene-dir", required=True)
    p.add_argument("--layout", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--variant", default="full")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    layout = read_layout(args.layout)
    scene = load_scene(f"{args.scene_dir}/poses/cameras.json")
    views = benchmark_views(scene)
    layout.check_views(list(views))
    trained = load_trained_scene(args.scene_dir, args.variant, "cpu")
    parts = session_parts(trained)
    teacher = trained.teacher
    render = CameraMemo(parts.render_fn)
    sources = {
        "teacher": CameraMemo(teacher_features_fn(teacher, render)),
        "imitation": CameraMemo(parts.features_fn),
    }
    rows, masks = [], {}
    for task in layout.tasks:
        for name in [task.reference_view, *task.targets]:
            if not layout.has_mask(task.task, name):
                continue
            gt = layout.read_mask(task.task, name)
            cam = render_camera(views[name], (gt.shape[1], gt.shape[0]))
            for source, features_fn in sources.items():
                feats = features_fn(cam)
                for kind in PROMPTS:
                    prompts, multi = gt_prompt(kind, gt)
                    with torch.no_grad():
                        out = teacher.decode(feats, prompts, (cam.height, cam.width), multimask_output=multi)
                    best = int(torch.argmax(out.scores))
                    mask = resize_mask(out.masks[best].cpu().numpy(), (gt.shape[1], gt.shape[0]))
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
    summary: dict = {}
    for source in sources:
        for kind in PROMPTS:
            per_task = {}
            for task in layout.tasks:
                ious = [
                    r["iou"]
                    for r in rows
                    if r["task"] == task.task
                    and r["source"] == source
                    and r["prompt"] == kind
                    and r["role"] == "target"
                ]
                if ious:
                    per_task[task.task] = float(np.mean(ious))
            summary[f"{source}/{kind}"] = {
                "miou": float(np.mean(list(per_task.values()))) if per_task else None,
                "tasks": per_task,
            }
    mesh_iou = mesh_ceiling(args.scene_dir, layout, views, scene.normalization, masks)
    for key, per_task in mesh_iou.items():
        summary[key]["surface_iou"] = per_task
    report = {
        "what": "decoder ceiling: every target view prompted from its own ground-truth mask (no tracking)",
        "scene_dir": args.scene_dir,
        "variant": args.variant,
        "teacher": teacher.info.name,
        "teacher_kind": teacher.info.kind,
        "summary": summary,
        "views": rows,
    }
    atomic_write_json(args.out, report)
    print(json.dumps({k: round(v["miou"], 4) for k, v in summary.items() if v["miou"] is not None}))
    print(json.dumps({k: {t: round(x, 3) for t, x in v.items()} for k, v in mesh_iou.items()}))
    return report


if __name__ == "__main__":
    main()
