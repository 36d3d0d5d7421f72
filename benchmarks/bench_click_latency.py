"""Click-to-mask latency of both pipelines on a trained scene, in one run.

* teacher pipeline: NeRF RGB rendering + the teacher's encoder + decoder (one click);
* imitation pipeline: rendered features + the same decoder (one click).

The view is the scene's first held-out view at the protocol resolution (``--render-size``, the
longest side); the click is at the image centre. Writes a JSON file (``--out``) with both medians,
every run, the ratio ``teacher / imitation``, the device and the teachers (with their
``untrained`` flag). Example::

    python benchmarks/bench_click_latency.py --scene-dir results/llff/fern --variant full \\
        --teacher sam_untrained_tiny --render-size 512 --warmup 1 --repeats 5 --out bench.json

``--timing-teacher`` times the teacher pipeline with another encoder (for example
``sam_vit_h_untrained`` for the true ViT-H cost without weights; the imitation side keeps the
field's own teacher decoder). On a CPU a ViT-H encode takes about a minute: use ``--warmup 0
--repeats 1`` there, and read the result as a single, not warmed-up run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from san.evaluation.config import EvaluationConfig
from san.evaluation.protocol import click_grid, decode_click, image_batch
from san.evaluation.timing import click_latency, device_name
from san.pipeline.evaluate_segmentation import load_parts
from san.teachers import TeacherConfig, build_teacher
from san.utils.io import atomic_write_json


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scene-dir", required=True, help="results/{dataset}/{scene}")
    p.add_argument("--variant", default="full", help="imitation variant (imitation/{variant}/field.pt)")
    p.add_argument("--teacher", default="sam_untrained_tiny", help="the teacher the field imitates")
    p.add_argument("--checkpoint", default=None, help="weights of --teacher (trained teachers only)")
    p.add_argument("--timing-teacher", default=None, help="encoder timed in the teacher pipeline (default: --teacher)")
    p.add_argument("--render-size", type=int, default=512, help="longest side of the view, pixels")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", required=True, help="JSON file to write")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    scene_dir = Path(args.scene_dir)
    mesh = scene_dir / "mesh" / "mesh_normalized.ply"
    parts = load_parts(
        scene_dir / "nerf" / "model.pt",
        scene_dir / "poses" / "cameras.json",
        scene_dir / "imitation" / args.variant / "field.pt",
        TeacherConfig(name=args.teacher, checkpoint=args.checkpoint),
        EvaluationConfig(render_size=args.render_size, max_views=1),
        mesh if mesh.is_file() else None,
        args.device,
    )
    teacher = parts.teacher
    timing_teacher = (
        teacher
        if args.timing_teacher in (None, args.teacher)
        else build_teacher(args.timing_teacher, None, str(parts.device))
    )
    view = parts.views[0]
    hw = (view.height, view.width)
    click = click_grid(view.width, view.height, 1)[0]

    result = click_latency(
        render_rgb=lambda: parts.render_rgb(view),
        encode=lambda rgb: timing_teacher.encode(image_batch(rgb)),
        render_features=lambda: parts.render_features(view),
        decode=lambda feats: decode_click(timing_teacher, feats, click, hw),
        decode_imitation=lambda feats: decode_click(teacher, feats, click, hw),
        warmup=args.warmup,
        repeats=args.repeats,
        device=parts.device,
    )
    record = {
        "scene_dir": str(scene_dir),
        "variant": args.variant,
        "view": view.name,
        "image_hw": list(hw),
        "click": [float(click[0]), float(click[1])],
        "device": device_name(parts.device),
        "teacher": teacher.info.name,
        "untrained": bool(teacher.info.untrained),
        "timing_teacher": timing_teacher.info.name,
        "timing_teacher_untrained": bool(timing_teacher.info.untrained),
        "imitation_step": parts.imitation_step,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "teacher_ms": result["teacher"]["median_ms"],
        "imitation_ms": result["imitation"]["median_ms"],
        "ratio": result["ratio"],
        "runs": {"teacher": result["teacher"]["all"], "imitation": result["imitation"]["all"]},
        "note": "" if args.warmup else "no warm-up: first-call costs are included in the timed runs",
    }
    atomic_write_json(args.out, record)
    print(json.dumps({k: record[k] for k in ("teacher_ms", "imitation_ms", "ratio", "device", "timing_teacher")}))
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
