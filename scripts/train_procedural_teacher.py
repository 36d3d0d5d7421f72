"""Train ``sam_tiny_procedural`` from a seed and measure it on held-out procedural scenes and the demo.

Trains the recipe of the shipped weights (``san/teachers/weights/``; they were trained with
exactly this command on 2 CPU cores, 53 minutes; float results depend on the torch thread count)::

    python scripts/train_procedural_teacher.py --device cpu --workers 2 --threads 2 --out results/teacher

Writes into ``--out`` (each file atomically; the model card last, so a run that stops early
leaves no card):

* ``sam_tiny_procedural.safetensors``: float16 weights;
* ``sam_tiny_procedural.json``: model card (SHA-256, architecture, recipe, timings, metrics);
* ``training_curve.csv``: loss, focal, dice, IoU-head MSE and train IoU (first / last round) per
  ``--log-every`` steps;
* ``heldout_metrics.json``: the bars (one click / one box, mean IoU) on held-out procedural
  views and on the demo scene's 48 views, with every segment's IoU;
* ``train.log``: the progress lines.

``--eval-only WEIGHTS`` skips training and evaluates a weights file (``--out`` gets
``heldout_metrics.json`` only). An interrupted run resumes from ``--out/resume.pt``.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from san.data.procedural import HELD_OUT_SEEDS, render_views, training_seeds
from san.teachers.procedural import ARCH, NAME, build_procedural_teacher, save_weights
from san.teachers.procedural_training import (
    TrainConfig,
    config_dict,
    demo_views,
    evaluate_views,
    to_training_arrays,
    train,
    write_json,
)
from san.utils.device import resolve_device

log = logging.getLogger("san")


def _parse(argv=None) -> argparse.Namespace:
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--workers", type=int, default=2, help="processes rendering scenes")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--train-scenes", type=int, default=d.train_scenes)
    p.add_argument("--views-per-scene", type=int, default=d.views_per_scene)
    p.add_argument("--batch-images", type=int, default=d.batch_images)
    p.add_argument("--targets-per-image", type=int, default=d.targets_per_image)
    p.add_argument("--eval-scenes", type=int, default=64, help="held-out scenes evaluated (4 views each)")
    p.add_argument("--no-demo-eval", action="store_true", help="skip the demo scene's views")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast in the image encoder and decoder (CUDA)")
    p.add_argument("--threads", type=int, default=0, help="torch threads for training (0: torch's default)")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval-only", default=None, help="evaluate this weights file instead of training")
    return p.parse_args(argv)


_HANDLERS: list[logging.Handler] = []


def _setup_logging(path: Path) -> None:
    """Progress lines to stderr and ``path`` (handlers of an earlier ``main`` call are removed)."""
    while _HANDLERS:
        h = _HANDLERS.pop()
        log.removeHandler(h)
        h.close()
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    log.setLevel(logging.INFO)
    for h in (logging.StreamHandler(sys.stderr), logging.FileHandler(path)):
        h.setFormatter(fmt)
        log.addHandler(h)
        _HANDLERS.append(h)


def evaluate(teacher, args, device) -> dict:
    t0 = time.perf_counter()
    seeds = list(HELD_OUT_SEEDS[: args.eval_scenes])
    views = render_views(seeds, 4, workers=args.workers, held_out=True)
    t_render = time.perf_counter() - t0
    held = evaluate_views(teacher, views, seed=args.seed)
    log.info(
        "held-out procedural: %d views, objects click mIoU %s box mIoU %s multimask click mIoU %s (n=%d); "
        "ground/sky click mIoU %s",
        len(views),
        held["objects"]["click_miou"],
        held["objects"]["box_miou"],
        held["objects"]["click_multimask_miou"],
        held["objects"]["n"],
        held["ground_sky"]["click_miou"],
    )
    out = {
        "teacher": teacher.info.name,
        "kind": teacher.info.kind,
        "label": teacher.info.label,
        "checkpoint_sha256": teacher.info.checkpoint_sha256,
        "device": str(device),
        "protocol": "one positive click at a random interior pixel (1 px from the boundary when possible) / the tight box; "
        "Teacher.decode with multimask_output=False; IoU vs the ground-truth instance mask at the view's resolution; "
        "segments of at least min_area_px pixels. click_multimask_miou: the same click with multimask_output=True, "
        "the candidate with the highest predicted IoU (SAM's convention for a single click); click_oracle_miou: "
        "the candidate closest to the ground truth (an upper bound)",
        "bars": {"click_miou": 0.85, "box_miou": 0.90},
        "heldout_procedural": {"seeds": [seeds[0], seeds[-1]], **held},
        "render_s": round(t_render, 1),
    }
    if not args.no_demo_eval:
        dv = demo_views(args.workers)
        demo = evaluate_views(teacher, dv, seed=args.seed)
        log.info(
            "demo scene: %d views, objects click mIoU %s box mIoU %s multimask click mIoU %s (n=%d)",
            len(dv),
            demo["objects"]["click_miou"],
            demo["objects"]["box_miou"],
            demo["objects"]["click_multimask_miou"],
            demo["objects"]["n"],
        )
        out["demo"] = demo
    out["eval_s"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv=None) -> int:
    args = _parse(argv)
    try:  # fail before any heavy work: the weights are written (and read back) as safetensors
        import safetensors  # noqa: F401
    except ImportError:
        print(
            "train_procedural_teacher: the package 'safetensors' is required (pip install safetensors)", file=sys.stderr
        )
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _setup_logging(out / "train.log")
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if args.threads:
        torch.set_num_threads(args.threads)
    log.info(
        "train_procedural_teacher: device %s, torch %s, %d threads, python %s",
        device,
        torch.__version__,
        torch.get_num_threads(),
        platform.python_version(),
    )

    if args.eval_only:
        teacher = build_procedural_teacher(args.eval_only).to(device)
        write_json(out / "heldout_metrics.json", evaluate(teacher, args, device))
        return 0

    config = replace(
        TrainConfig(),
        seed=args.seed,
        steps=args.steps,
        train_scenes=args.train_scenes,
        views_per_scene=args.views_per_scene,
        batch_images=args.batch_images,
        targets_per_image=args.targets_per_image,
        warmup_steps=min(TrainConfig().warmup_steps, max(1, args.steps // 10)),
    )
    t_start = time.perf_counter()
    seeds = training_seeds(config.train_scenes, start=config.seed * 100_000)

    def progress(done, total, elapsed):
        if done % max(1, total // 10) == 0 or done == total:
            log.info("render training scenes %d/%d | %.1fs", done, total, elapsed)

    views = render_views(seeds, config.views_per_scene, workers=args.workers, on_progress=progress)
    images, ids = to_training_arrays(views)
    del views
    t_render = time.perf_counter() - t_start
    log.info("rendered %d training views in %.1fs (%d workers)", images.shape[0], t_render, args.workers)

    t_train0 = time.perf_counter()
    sam, rows = train(
        images,
        ids,
        config,
        device,
        curve_path=out / "training_curve.csv",
        resume_path=out / "resume.pt",
        amp=args.amp,
        log_every=args.log_every,
    )
    t_train = time.perf_counter() - t_train0
    weights = out / f"{NAME}.safetensors"
    digest = save_weights(sam, weights)
    log.info(
        "trained %d steps in %.1fs; weights %s (%d bytes, sha256 %s)",
        config.steps,
        t_train,
        weights,
        weights.stat().st_size,
        digest,
    )

    # evaluate the saved float16 weights through the registered teacher's own loader
    card = {
        "name": NAME,
        "kind": "procedural",
        "label": "trained on procedural scenes (not SAM)",
        "sha256": digest,
        "file": weights.name,
        "bytes": weights.stat().st_size,
        "dtype": "float16",
        "arch": {**config_dict(ARCH), "embedding_shape": list(ARCH.embedding_shape)},
        "recipe": config_dict(config),
        "device": str(device),
        "torch": torch.__version__,
        "workers": args.workers,
        "threads": torch.get_num_threads(),
        "amp": args.amp,
        "render_s": round(t_render, 1),
        "train_s": round(t_train, 1),
        "train_views": int(images.shape[0]),
        "final_curve": rows[-1] if rows else None,
    }
    teacher = build_procedural_teacher(str(weights), expected_sha256=digest).to(device)
    metrics = evaluate(teacher, args, device)
    write_json(out / "heldout_metrics.json", metrics)
    card["heldout"] = {k: metrics["heldout_procedural"]["objects"][k] for k in ("click_miou", "box_miou", "n")}
    if "demo" in metrics:
        card["demo"] = {k: metrics["demo"]["objects"][k] for k in ("click_miou", "box_miou", "n")}
    card["total_s"] = round(time.perf_counter() - t_start, 1)
    write_json(out / f"{NAME}.json", card)
    resume = out / "resume.pt"
    if resume.exists():
        resume.unlink()
    log.info("done in %.1fs -> %s", card["total_s"], out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
