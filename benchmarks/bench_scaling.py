"""Scaling curve: wall time and peak memory of train_nerf, cache_features and train_imitation
against the number of images and their resolution (issue 19, item 5).

Scenes are cut from LLFF fern ``images_8`` (504x378, 20 images): ``--counts`` images (every k-th,
evenly spread) at half size (252x189), and ``--widths`` image widths (aspect kept, PIL bicubic)
at ``--fixed-count`` images. Each stage of each point runs in its own Python process (the stage's
own ``san.pipeline`` function, the demo's settings at small step counts: ``cpu`` presets, NeRF
``--nerf-steps``, imitation ``--imitation-steps``, cache ``render_size`` 128 with 4 interpolated
views, teacher ``sam_tiny_procedural``), so its peak RSS (``ru_maxrss``) is its own; threads: 1.

What grows with what (by design, see the output): train_nerf's per-step cost is fixed by
``rays_per_batch``; its memory holds every training pixel (uint8) and its test-view evaluation
renders every test pixel, so both grow with pixels. cache_features renders each training view at
``render_size`` whatever the image size, so it grows with the image count only; train_imitation
reads the cache (fixed-size entries) and grows with neither beyond the FIFO's fill.

Writes ``--out``/``scaling.csv`` (one row per point and stage: images, width, height, pixels,
stage, wall_s, cpu_s of the whole child process, peak_rss_mb, load_before), ``scaling.json`` (rows plus settings and machine) and
``scaling.png``. Usage::

    python benchmarks/bench_scaling.py --data ../shared/data/llff_fern/fern --out benchmarks/results/scaling
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STAGES = ("train_nerf", "cache_features", "train_imitation")


def make_scene(src: Path, out: Path, count: int, width: int) -> tuple[int, int]:
    """``count`` evenly spread images of ``src/images_8`` resized to ``width`` (aspect kept) into
    ``out/images_8`` with their ``poses_bounds.npy`` rows; returns ``(width, height)``."""
    from PIL import Image

    images = sorted((src / "images_8").glob("*.png")) + sorted((src / "images_8").glob("*.jpg"))
    rows = np.load(src / "poses_bounds.npy")
    if count > len(images) or len(rows) != len(images):
        raise ValueError(f"{src}: {len(images)} images / {len(rows)} pose rows, asked for {count}")
    keep = np.unique(np.round(np.linspace(0, len(images) - 1, count)).astype(int))
    (out / "images_8").mkdir(parents=True, exist_ok=True)
    size = None
    for i in keep:
        with Image.open(images[i]) as im:
            h = round(im.height * width / im.width)
            im.convert("RGB").resize((width, h), Image.BICUBIC).save(out / "images_8" / f"{images[i].stem}.png")
            size = (width, h)
    np.save(out / "poses_bounds.npy", rows[keep])
    return size


def run_stage(stage: str, work: Path, nerf_steps: int, imitation_steps: int) -> dict:
    """One stage in this process (the child side); returns wall seconds and peak RSS."""
    import torch

    torch.set_num_threads(1)
    from san.features.build import CacheFeaturesConfig
    from san.imitation.config import imitation_config
    from san.models.nerf_trainer import train_nerf_config
    from san.pipeline.cache_features import cache_features
    from san.pipeline.train_imitation import train_imitation
    from san.pipeline.train_nerf import train_nerf
    from san.teachers import TeacherConfig

    teacher = TeacherConfig(name="sam_tiny_procedural")
    cams = work / "cameras.json"
    t0 = time.perf_counter()
    if stage == "train_nerf":
        cfg = train_nerf_config({"preset": "cpu", "steps": nerf_steps, "checkpoint_every": 0, "log_every": 50})
        train_nerf(
            cams,
            model=work / "model.pt",
            metrics=work / "nerf.json",
            curve=work / "curve.csv",
            config=cfg,
            device="cpu",
        )
    elif stage == "cache_features":
        cfg = CacheFeaturesConfig(num_augmented=4, render_size=128)
        cache_features(work / "model.pt", cams, work / "cache.h5", teacher, cfg, device="cpu")
    elif stage == "train_imitation":
        cfg = imitation_config(
            {"preset": "cpu", "steps": imitation_steps, "fresh_fraction": 0.0, "checkpoint_every": 0, "eval_views": 1}
        )
        train_imitation(
            work / "model.pt",
            cams,
            work / "cache.h5",
            field=work / "field.pt",
            curve=work / "icurve.csv",
            stats=work / "stats.json",
            config=cfg,
            variant="full",
            teacher_config=teacher,
            device="cpu",
        )
    else:
        raise ValueError(f"unknown stage {stage!r}")
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),  # the whole process: imports and loading included
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def measure_point(src: Path, work: Path, count: int, width: int, args) -> list[dict]:
    from san.data.prepare import PreparePosesConfig
    from san.pipeline.prepare_poses import prepare_poses

    scene_dir = work / "scene"
    w, h = make_scene(src, scene_dir, count, width)
    prepare_poses(scene_dir, work / "cameras.json", format="llff", kind="forward_facing", config=PreparePosesConfig())
    rows = []
    for stage in STAGES:
        load = os.getloadavg()[0]
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        cmd = [sys.executable, __file__, "--stage", stage, "--work", str(work)]
        cmd += ["--nerf-steps", str(args.nerf_steps), "--imitation-steps", str(args.imitation_steps)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{stage} at {count} images x {w}x{h} failed:\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(
            {"images": count, "width": w, "height": h, "pixels": count * w * h, "stage": stage, **result}
            | {"load_before": round(load, 2)}
        )
        print(f"[bench_scaling] {count} x {w}x{h} {stage}: {result} (load {load:.2f})", flush=True)
    return rows


def plot(rows: list[dict], path: Path, fixed_count: int, fixed_width: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for col, (key, fixed_key, fixed, label) in enumerate(
        (("images", "width", fixed_width, "images"), ("pixels", "images", fixed_count, "pixels (all images)"))
    ):
        for stage in STAGES:
            pts = sorted((r[key], r) for r in rows if r["stage"] == stage and r[fixed_key] == fixed)
            xs = [x for x, _ in pts]
            axes[0, col].plot(xs, [r.get("cpu_s", r["wall_s"]) for _, r in pts], "o-", label=stage)
            axes[1, col].plot(xs, [r["peak_rss_mb"] for _, r in pts], "o-", label=stage)
        axes[0, col].set_title(f"vs {label} ({fixed_key} = {fixed})")
        axes[1, col].set_xlabel(label)
    axes[0, 0].set_ylabel("CPU seconds (wall when not recorded)")
    axes[1, 0].set_ylabel("peak RSS (MB)")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "llff_fern" / "fern")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "scaling")
    p.add_argument("--counts", type=int, nargs="+", default=[5, 10, 20])
    p.add_argument("--widths", type=int, nargs="+", default=[126, 252, 504])
    p.add_argument("--fixed-count", type=int, default=10)
    p.add_argument("--fixed-width", type=int, default=252)
    p.add_argument("--nerf-steps", type=int, default=200)
    p.add_argument("--imitation-steps", type=int, default=50)
    p.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)  # child process
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.stage:
        print(json.dumps(run_stage(args.stage, args.work, args.nerf_steps, args.imitation_steps)))
        return None

    points = [(c, args.fixed_width) for c in args.counts] + [(args.fixed_count, w) for w in args.widths]
    points = list(dict.fromkeys(points))
    rows = []
    with tempfile.TemporaryDirectory(prefix="san-scaling-") as tmp:
        for count, width in points:
            rows += measure_point(args.data, Path(tmp) / f"{count}_{width}", count, width, args)
    args.out.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    pd.DataFrame(rows).to_csv(args.out / "scaling.csv", index=False)
    record = {
        "rows": rows,
        "settings": {
            k: getattr(args, k)
            for k in ("counts", "widths", "fixed_count", "fixed_width", "nerf_steps", "imitation_steps")
        }
        | {"data": str(args.data), "threads": 1, "teacher": "sam_tiny_procedural", "cache_render_size": 128},
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform},
    }
    (args.out / "scaling.json").write_text(json.dumps(record, indent=2) + "\n")
    plot(rows, args.out / "scaling.png", args.fixed_count, args.fixed_width)
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
