"""Test PSNR of the fern NeRF versus training wall-clock time.

Loads LLFF fern (``../shared/data/llff_fern/fern`` beside the checkout, test views 0/8/16) with
:func:`san.data.prepare.prepare_scene`, trains with a ``train_nerf`` preset (``cpu`` by default) and
every ``--eval-every`` seconds of *training* time renders the test views and records their mean
PSNR / SSIM; evaluation time is excluded from the training clock. Writes ``psnr_vs_time.csv`` and
``summary.json`` to ``--out``. The bar for the ``cpu`` preset: mean test PSNR >= 24.0 dB within
20 minutes of training on 2 CPU cores.

    python benchmarks/bench_nerf_fern.py --out results/bench/nerf_fern --threads 2
    python benchmarks/bench_nerf_fern.py --out /tmp/b --minutes 5 --set rays_per_batch=2048 \\
        --set model.sampler.num_samples=16
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from pathlib import Path

import torch
import yaml

from san.config import to_dict
from san.data.prepare import prepare_scene
from san.pipeline.train_nerf import NeRFTrainer, train_nerf_config
from san.utils.device import resolve_device, synchronize
from san.utils.io import atomic_write_json
from san.utils.progress import setup_logging

REPO = Path(__file__).resolve().parents[1]
FERN = REPO.parent / "shared" / "data" / "llff_fern" / "fern"
log = logging.getLogger("san")


def _set(section: dict, assignment: str) -> None:
    """``a.b.c=value`` (YAML value) into a nested dict."""
    key, _, value = assignment.partition("=")
    *parents, leaf = key.split(".")
    for p in parents:
        section = section.setdefault(p, {})
    section[leaf] = yaml.safe_load(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--scene", type=Path, default=FERN)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a nerf config key")
    ap.add_argument("--minutes", type=float, default=20.0, help="stop after this much training time")
    ap.add_argument("--eval-every", type=float, default=60.0, help="seconds of training between evaluations")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="what --minutes / --eval-every count: wall-clock training time (the bar), or this process's "
        "CPU time (for comparing configurations on a machine shared with other jobs)",
    )
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    setup_logging()
    if args.threads:
        torch.set_num_threads(args.threads)
    section: dict = {"preset": args.preset}
    for a in args.set:
        _set(section, a)
    config = train_nerf_config(section)
    device = resolve_device(args.device)
    scene = prepare_scene(args.scene)
    trainer = NeRFTrainer(scene, config, device)
    log.info(
        "bench: %d train rays, test frames %s, %d threads",
        len(trainer.rays),
        scene.indices("test"),
        torch.get_num_threads(),
    )

    rows, budget = [], args.minutes * 60.0
    next_eval, train_s, cpu_s = args.eval_every, 0.0, 0.0

    def evaluate() -> None:
        ev = trainer.evaluate(scene.indices("test"))
        rows.append(
            {
                "train_seconds": round(train_s, 1),
                "cpu_seconds": round(cpu_s, 1),
                "step": trainer.step_count,
                "psnr": round(ev["psnr"], 3),
                "ssim": round(ev["ssim"], 4),
            }
        )
        log.info(
            "bench: %.0f s, step %d: test PSNR %.2f dB, SSIM %.4f", train_s, trainer.step_count, ev["psnr"], ev["ssim"]
        )

    def clock() -> float:
        return cpu_s if args.clock == "cpu" else train_s

    while trainer.step_count < config.steps and clock() < budget:
        t0, c0 = time.perf_counter(), time.process_time()
        stats = trainer.step()
        synchronize(device)
        train_s += time.perf_counter() - t0
        cpu_s += time.process_time() - c0
        if trainer.step_count % 200 == 0:
            log.info("bench: step %d, %.0f s, batch psnr %.2f", trainer.step_count, train_s, stats["psnr"])
        if clock() >= next_eval:
            evaluate()
            next_eval += args.eval_every
    if not rows or rows[-1]["step"] != trainer.step_count:
        evaluate()

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "psnr_vs_time.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    key = "cpu_seconds" if args.clock == "cpu" else "train_seconds"
    best_in_budget = max((r["psnr"] for r in rows if r[key] <= budget + 1e-6), default=float("nan"))
    summary = {
        "scene": str(args.scene),
        "preset": args.preset,
        "overrides": args.set,
        "threads": torch.get_num_threads(),
        "clock": args.clock,
        "device": str(device),
        "encoding_backend": trainer.model.encoding_backend,
        "steps": trainer.step_count,
        "train_seconds": round(train_s, 1),
        "cpu_seconds": round(cpu_s, 1),
        "final_psnr": rows[-1]["psnr"],
        "final_ssim": rows[-1]["ssim"],
        "best_psnr_within_budget": best_in_budget,
        "config": to_dict(config),
        "rows": rows,
    }
    atomic_write_json(args.out / "summary.json", summary)
    log.info(
        "bench: final test PSNR %.2f dB after %.0f s of training (%d steps)",
        rows[-1]["psnr"],
        train_s,
        trainer.step_count,
    )


if __name__ == "__main__":
    main()
