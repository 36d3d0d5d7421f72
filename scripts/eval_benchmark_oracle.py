"""The benchmark harness's own ceiling on the demo: the protocol with a perfect 2D segmenter.

Runs :func:`san.benchmark.run_task` on a trained demo scene exactly as rule
``evaluate_benchmark`` does (the NeRF's rendered depth lifts and tracks the prompts, the extracted
mesh is segmented from the masks of 3 views), but the decoder is an *oracle*: in each view it
returns the demo's exact object mask (ray-cast ids, :func:`san.data.demo.render_demo_view`) of the
object under most of the tracked positive points given to the decoder, and an empty mask when
that is the sky or the ground.
What remains is the error of the harness itself: tracking through the NeRF's depth (a point
tracked off its object, or dropped as occluded) and the mesh vote on the extracted mesh. A
teacher cannot score above these figures on the demo; the bars (per-object mIoU >= 0.85, surface
IoU >= 0.80) are only reachable where these are higher.

Usage: ``python scripts/eval_benchmark_oracle.py --scene-dir results/demo/demo
--layout results/demo/demo/benchmark_gt --out oracle.json [--variant full]`` (the variant only
selects the field that the scene loader opens; the oracle ignores its features).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import trimesh

from san.benchmark import CameraMemo, run_task, summarize_scene, summarize_task
from san.cameras import Camera
from san.data.config import DemoSceneConfig
from san.data.demo import render_demo_view
from san.evaluation.config import BenchmarkConfig
from san.pipeline.evaluate_benchmark import ground_truth_meshes, load_benchmark, mesh_segmentation
from san.trained_scene import scene_parts
from san.utils.io import atomic_write_json


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scene-dir", required=True)
    p.add_argument("--layout", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--variant", default="full")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--propagation", default="click", choices=("click", "chain"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    layout, scene, views = load_benchmark(args.layout, f"{args.scene_dir}/poses/cameras.json")
    parts = scene_parts(args.scene_dir, variant=args.variant, device="cpu")
    norm = scene.normalization
    config = DemoSceneConfig()

    def ids_fn(camera: Camera) -> list[torch.Tensor]:  # "features" of the oracle: the exact id map of the camera
        c2w = norm.to_input_c2w(camera.c2w)
        return [
            torch.as_tensor(
                render_demo_view(c2w, camera.K, camera.width, camera.height, config)["ids"].astype(np.int64)
            )
        ]

    def oracle_decode(features, prompts, hw):
        ids = features[0]
        pos = prompts.points[prompts.labels == 1]
        if len(pos) == 0:
            return torch.zeros(1, *hw, dtype=torch.bool), torch.zeros(1)
        xy = pos.floor().long()
        under = ids[xy[:, 1].clamp(0, hw[0] - 1), xy[:, 0].clamp(0, hw[1] - 1)]
        i = int(torch.mode(under).values)  # the object under most positive points (ties: smallest id)
        mask = (ids == i) if i >= 2 else torch.zeros(hw, dtype=torch.bool)  # 0 sky, 1 ground: no object
        return mask[None], torch.ones(1)

    render = CameraMemo(parts.render_fn)
    features = CameraMemo(ids_fn)
    mesh = trimesh.load(f"{args.scene_dir}/mesh/mesh_normalized.ply", force="mesh", process=False)
    _, gt = ground_truth_meshes(layout)
    per_task, scores_all, mesh_iou = {}, [], {}
    for task in layout.tasks:
        scores = run_task(
            task,
            views,
            lambda v, t=task.task: layout.read_mask(t, v) if layout.has_mask(t, v) else None,
            render,
            features,
            oracle_decode,
            source="oracle",
            propagation=args.propagation,
        )
        per_task[task.task] = summarize_task(scores)
        scores_all += scores
        m = mesh_segmentation(layout, task, scores, views, mesh, norm, BenchmarkConfig(), gt)
        mesh_iou[task.task] = m
        print(
            f"{task.task:9s} oracle mIoU {per_task[task.task]['iou_per_image_mean']:.4f}  pooled {per_task[task.task]['iou_pooled']:.4f}  "
            f"targets without prompt {per_task[task.task]['targets_without_prompt']}  mesh surface IoU {m['surface_iou']:.4f}"
        )
    report = {
        "what": "benchmark harness with an oracle 2D segmenter (exact demo masks under the tracked click): the harness's ceiling",
        "scene_dir": args.scene_dir,
        "propagation": args.propagation,
        "scene": summarize_scene(per_task, scores_all),
        "tasks": per_task,
        "mesh_segmentation": mesh_iou,
        "views": [s.row() for s in scores_all],
    }
    atomic_write_json(args.out, report)
    print(json.dumps({k: report["scene"][k] for k in ("miou", "iou_pooled", "min_task_iou")}))
    return report


if __name__ == "__main__":
    main()
