"""Imitation quality of a trained ``field.pt``: cosine similarity and MSE against the teacher.

Renders held-out (test) and training views with the NeRF, encodes them with the teacher, renders the
imitated features for the same cameras and compares them on the valid cells
(:mod:`san.imitation.quality`). The MSE drop from initialisation is taken from the run's
``train_stats.json`` (``quality.before``, measured by the stage before its first step) when it sits
next to ``field.pt``. Writes one JSON file.

    python scripts/eval_imitation_quality.py --nerf results/demo/demo/nerf/model.pt \
        --cameras results/demo/demo/poses/cameras.json \
        --field results/demo/demo/imitation/full/field.pt --teacher sam_untrained_tiny \
        --views 8 --render-size 512 --out quality.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from san.data.scene import load_scene
from san.features.augment import CameraSpec, camera_at_size
from san.imitation.model import load_imitation
from san.imitation.quality import evenly_spaced, feature_quality, summarize, teacher_views
from san.models.nerf import load_nerf
from san.rendering.mesh_raycast import load_mesh
from san.teachers import build_teacher
from san.utils.device import resolve_device
from san.utils.io import atomic_write_json


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nerf", required=True, help="nerf/model.pt")
    p.add_argument("--cameras", required=True, help="poses/cameras.json")
    p.add_argument("--field", required=True, help="imitation/{variant}/field.pt")
    p.add_argument("--teacher", required=True, help="teacher registry name (the one the field imitates)")
    p.add_argument("--teacher-checkpoint", default=None)
    p.add_argument("--mesh", default=None, help="mesh/mesh_normalized.ply (mesh-surface fields)")
    p.add_argument("--views", type=int, default=8, help="test views and training views each")
    p.add_argument("--render-size", type=int, default=512, help="longest side of the renderings the teacher sees")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="JSON file to write")
    args = p.parse_args(argv)

    torch.set_num_threads(max(1, torch.get_num_threads()))
    dev = resolve_device(args.device)
    scene = load_scene(args.cameras)
    nerf = load_nerf(args.nerf, dev)
    model = load_imitation(args.field, dev)
    teacher = build_teacher(args.teacher, args.teacher_checkpoint, str(dev))
    if model.metadata.get("teacher") not in (None, teacher.info.name):
        raise SystemExit(f"{args.field} imitates {model.metadata['teacher']!r}, not {teacher.info.name!r}")
    mesh = load_mesh(args.mesh, dev) if args.mesh else None

    views = {}
    for split, frames in (("test", scene.test_frames), ("train", scene.train_frames)):
        cams = [camera_at_size(CameraSpec(f.c2w, f.K, f.width, f.height), args.render_size) for f in frames]
        pick = evenly_spaced(cams, args.views)
        views[split] = teacher_views(nerf, teacher, [cams[i] for i in pick], [f"{split}/{i}" for i in pick])
    after = {split: feature_quality(nerf, model, v, mesh) for split, v in views.items()}
    stats_file = Path(args.field).with_name("train_stats.json")
    before = None
    if stats_file.is_file():
        quality = json.loads(stats_file.read_text()).get("quality") or {}
        before = quality.get("before")
    record = summarize(before, after, bool(teacher.info.untrained))
    record.update(field=str(args.field), teacher=teacher.info.name, render_size=args.render_size, device=str(dev))
    atomic_write_json(args.out, record)
    print(
        json.dumps(
            {k: record[k] for k in ("passed",)} | {s: {m: after[s][m] for m in ("cosine", "mse")} for s in after},
            indent=2,
        )
    )
    return record


if __name__ == "__main__":
    main()
