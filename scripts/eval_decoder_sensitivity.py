"""How much mask IoU a teacher's decoder gives for a given feature agreement: the yardstick for
the imitation's mask IoU.

For each held-out view (protocol resolution, 5x5 click grid) the teacher's own features are
perturbed in three ways and decoded with the same clicks, scored against the unperturbed teacher
masks exactly like the protocol scores the imitation (:mod:`san.evaluation.protocol`):

* ``noise``: Gaussian noise of ``sigma`` times each channel's spatial std added to every cell;
* ``blend``: ``(1 - a) * teacher + a * imitation`` (the imitation's error, scaled down);
* ``blur``: a 3x3 box blur of the teacher's map (a smoothness a view-consistent field must have).

Each row gives the mean cosine to the teacher features (valid region) and the mean IoU, beside the
imitation's own. With an *untrained* SAM decoder the masks are signs of random projections of the
features, so IoU falls quickly as the cosine drops below 1; a trained decoder is expected to be far
more tolerant. Writes one JSON file.

    python scripts/eval_decoder_sensitivity.py --scene results/demo/demo --variant full \\
        --teacher sam_untrained_tiny --out results/demo/demo/evaluation/decoder_sensitivity.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from san.evaluation.config import EvaluationConfig
from san.evaluation.protocol import click_grid, decode_clicks, feature_agreement, image_batch, mask_iou
from san.pipeline.evaluate_segmentation import load_parts
from san.teachers import TeacherConfig
from san.utils.io import atomic_write_json

NOISE = (0.2, 0.5)
BLEND = (0.5,)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scene", required=True, type=Path, help="results/{dataset}/{scene}")
    p.add_argument("--variant", default="full")
    p.add_argument("--teacher", required=True, help="the teacher the field imitates")
    p.add_argument("--teacher-checkpoint", default=None)
    p.add_argument("--render-size", type=int, default=128)
    p.add_argument("--views", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)

    mesh = args.scene / "mesh" / "mesh_normalized.ply"
    parts = load_parts(
        args.scene / "nerf" / "model.pt",
        args.scene / "poses" / "cameras.json",
        args.scene / "imitation" / args.variant / "field.pt",
        TeacherConfig(name=args.teacher, checkpoint=args.teacher_checkpoint),
        EvaluationConfig(render_size=args.render_size, max_views=args.views),
        mesh if mesh.is_file() else None,
        args.device,
    )
    teacher = parts.teacher
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    rows: dict[str, list] = {}
    for view in parts.views:
        x = image_batch(parts.render_rgb(view))
        h, w = int(x.shape[-2]), int(x.shape[-1])
        with torch.no_grad():
            target = teacher.encode(x)
            imitated = [f.reshape(t.shape).to(t) for f, t in zip(parts.render_features(view), target)]
        valid = teacher.valid_hw((h, w))
        clicks = click_grid(w, h, 5)
        reference, _ = decode_clicks(teacher, target, clicks, (h, w))

        def score(label: str, maps) -> None:
            masks, _ = decode_clicks(teacher, maps, clicks, (h, w))
            _, cos = feature_agreement(maps, target, valid)
            rows.setdefault(label, []).append((cos, float(np.mean([mask_iou(a, b) for a, b in zip(reference, masks)]))))

        score("imitation", imitated)
        for sigma in NOISE:
            noisy = [
                t + sigma * t.std(dim=(-2, -1), keepdim=True) * torch.randn(t.shape, generator=gen).to(t)
                for t in target
            ]
            score(f"noise {sigma}", noisy)
        for a in BLEND:
            score(f"blend {a}", [(1 - a) * t + a * i for t, i in zip(target, imitated)])
        score("blur 3x3", [F.avg_pool2d(t, 3, 1, 1, count_include_pad=False) for t in target])
    table = [
        {
            "perturbation": k,
            "feature_cosine": float(np.mean([c for c, _ in v])),
            "mask_iou": float(np.mean([i for _, i in v])),
        }
        for k, v in rows.items()
    ]
    record = {
        "scene": str(args.scene),
        "variant": args.variant,
        "teacher": teacher.info.name,
        "untrained": bool(teacher.info.untrained),
        "render_size": args.render_size,
        "views": [v.name for v in parts.views],
        "rows": table,
    }
    atomic_write_json(args.out, record)
    for r in table:
        print(f"{r['perturbation']:<12} cosine {r['feature_cosine']:.4f}  mask IoU {r['mask_iou']:.4f}")
    return record


if __name__ == "__main__":
    main()
