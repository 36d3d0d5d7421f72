"""The demo scene's ground-truth benchmark, in the layout of :mod:`san.data.gt_layout`.

Built from a written demo folder (:func:`san.data.demo.make_demo_scene`): its exact id masks
(``masks/view_*.png``) and ground-truth meshes (``meshes/*.ply``). One task per object:

* **reference view**: the *training* view (not a multiple of ``test_every``, the split rule of
  ``prepare_poses``) where the object covers the most pixels (first such view on ties);
* **prompt**: one positive click, :func:`san.data.gt_layout.mask_to_click` of the object's mask
  there (the pixel deepest inside the object: on the object, never on the sky or an edge);
* **targets**: every test view (``0, test_every, 2 test_every, ...``), the object's exact mask in
  each (empty where it is hidden or off-screen: an empty prediction then scores IoU 1);
* **mesh**: the object's ground-truth mesh; the ground is an occluder for the surface IoU's
  observation test; ``surface_distance`` is 1 % of the diagonal of the region of interest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from san.data.gt_layout import BenchmarkTask, mask_to_click, write_layout

SURFACE_DISTANCE_FRACTION = 0.01  # of the region of interest's diagonal


def demo_benchmark(scene_dir: str | os.PathLike, out_dir: str | os.PathLike, test_every: int = 8) -> Path:
    """Write the demo's benchmark folder ``out_dir`` from the demo folder ``scene_dir``.

    Args:
        scene_dir: a folder written by :func:`san.data.demo.make_demo_scene`.
        out_dir: the benchmark folder to (re)create (atomically).
        test_every: the pipeline's ``poses.test_every`` (test views are ``0, test_every, ...``).

    Raises:
        ValueError: ``test_every < 2`` (no training view to prompt in, or no test view).
    """
    if test_every < 2:
        raise ValueError(
            f"demo_benchmark: poses.test_every = {test_every} leaves no training or no test view; need >= 2"
        )
    scene_dir = Path(scene_dir)
    gt = json.loads((scene_dir / "scene_gt.json").read_text())
    views = [Path(v["image"]).stem for v in gt["cameras"]["views"]]
    ids = [np.asarray(Image.open(scene_dir / "masks" / f"{v}.png")) for v in views]
    test = [v for k, v in enumerate(views) if k % test_every == 0]
    train = [k for k in range(len(views)) if k % test_every != 0]
    W, H = gt["cameras"]["width"], gt["cameras"]["height"]
    tasks, masks, meshes = [], {}, {}
    for obj in gt["objects"]:
        areas = [int((ids[k] == obj["id"]).sum()) for k in train]
        ref = train[int(np.argmax(areas))]
        ref_mask = ids[ref] == obj["id"]
        x, y = mask_to_click(ref_mask)
        tasks.append(
            BenchmarkTask(
                task=obj["name"],
                reference_view=views[ref],
                reference_size=(W, H),
                points=np.array([[x, y]]),
                labels=np.array([1]),
                box=None,
                targets=tuple(test),
                prompt_rule="demo: one positive click, the pixel deepest inside the object's exact mask (mask_to_click) "
                "in the training view where the object covers the most pixels",
            )
        )
        masks[obj["name"]] = {views[ref]: ref_mask, **{v: ids[views.index(v)] == obj["id"] for v in test}}
        meshes[obj["name"]] = trimesh.load(scene_dir / obj["mesh"], force="mesh", process=False)
    ground = trimesh.load(scene_dir / gt["ground"]["mesh"], force="mesh", process=False)
    roi = np.asarray(gt["region_of_interest"], dtype=np.float64)
    return write_layout(
        out_dir,
        tasks,
        masks,
        name="demo",
        source="san's procedural demo scene: exact id masks and meshes of the ray caster (san.data.demo)",
        meshes=meshes,
        occluders={"ground": ground},
        surface_distance=SURFACE_DISTANCE_FRACTION * float(np.linalg.norm(roi[1] - roi[0])),
    )
