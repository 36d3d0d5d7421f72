"""`make demo` side by side: a base commit against the checkout, on the same machine, alternating.

Before any timed run, each side gets what its ``make install`` builds beyond the pip install (the
C++ CPU hash-grid kernel, where the commit has one: :func:`prepare`). Each repeat runs the demo DAG (``snakemake --cores N`` with the commit's own ``config/config.yaml``)
from an empty results folder, first for the base commit, then for the checkout (the order alternates
between repeats so a machine that slows down over time does not favour one side). The base is a
``git worktree`` of ``--base`` in a temporary folder; both run with the same Python environment,
each importing its own ``san`` (``PYTHONPATH``); the checkout side is a worktree of ``HEAD`` too, so
commit first (uncommitted changes are not measured; ``head_dirty`` records them) and the checkout's
own ``results/`` is never touched. Absolute times differ between machines; the ratio
of the medians is the figure.

Writes ``--out`` (JSON): per side every run's wall seconds, the median, the ratio
``base / head``, the figures each run produced (NeRF test PSNR, mesh Chamfer, imitation held-out
cosine, mask IoU per variant) so that "same figures within noise" can be read off, the machine's
load average before each run, and the commits.

    python benchmarks/bench_demo_speed.py --base bd5d5a4 --repeats 3 --out benchmarks/results/demo_speed.json

A run of the demo takes 5-15 minutes on 2 idle cores: three repeats of both sides take one to
one and a half hours. Run it on an otherwise idle machine (the JSON records the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _pick(value: Any, *keys: str) -> Any:
    """``value[k0][k1]...`` or ``None`` where a level is missing (older commits' layouts differ)."""
    for k in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(k)
    return value


def demo_figures(results: Path) -> dict[str, Any]:
    """The figures a demo run produced (whatever of them exists in that commit's layout): NeRF test
    PSNR, mesh Chamfer (symmetric, fraction of the region diagonal when recorded), imitation
    held-out / training cosine, mask IoU per variant, ground-truth benchmark mIoU per variant."""
    scene = results / "demo" / "demo"
    out: dict[str, Any] = {}
    nerf = _read_json(scene / "nerf" / "metrics.json")
    if nerf:
        out["nerf_psnr"] = nerf.get("psnr")
    mesh = _read_json(scene / "mesh" / "mesh.json")
    if mesh:
        chamfer = mesh.get("chamfer")
        out["mesh_chamfer"] = (
            {k: chamfer.get(k) for k in ("chamfer_symmetric", "chamfer_fraction") if k in chamfer}
            if isinstance(chamfer, dict)
            else chamfer
        )
    for variant_dir in sorted((scene / "imitation").glob("*")):
        stats = _read_json(variant_dir / "train_stats.json") or {}
        after = _pick(stats, "quality", "after")
        if after:
            out[f"cosine_{variant_dir.name}"] = {
                split: _pick(after, split, "cosine") for split in ("test", "train") if split in after
            }
    for variant_dir in sorted((scene / "evaluation").glob("*")):
        metrics = _read_json(variant_dir / "metrics.json")
        if metrics:
            out[f"iou_{variant_dir.name}"] = metrics.get("mask_iou")
            out.setdefault("teacher", metrics.get("teacher"))
    for variant_dir in sorted((scene / "benchmark").glob("*")):
        metrics = _read_json(variant_dir / "metrics.json")
        if metrics:
            out[f"gt_miou_{variant_dir.name}"] = metrics.get("iou_vs_gt")
            out[f"gt_teacher_miou_{variant_dir.name}"] = metrics.get("teacher_iou_vs_gt")
    return out


def prepare(checkout: Path, python: Path) -> str | None:
    """What the commit's ``make install`` builds besides the pip install, done once before any timed
    run (outside the timing): the C++ CPU hash-grid kernel where the commit has one (``san
    build-kernel``; torch's extension cache rebuilds it for a checkout at a new path). Returns the
    command run, or ``None``."""
    if not (checkout / "san" / "encodings" / "csrc").is_dir():
        return None
    env = dict(os.environ, PYTHONPATH=str(checkout))
    code = "from san.cli import main; raise SystemExit(main(['build-kernel']))"
    subprocess.run([str(python), "-c", code], cwd=checkout, env=env, check=True)
    return "san build-kernel"


def run_demo(checkout: Path, python: Path, cores: int, log: Path) -> float:
    """One demo DAG from empty results in ``checkout``; wall seconds (raises on failure)."""
    shutil.rmtree(checkout / "results", ignore_errors=True)
    shutil.rmtree(checkout / ".snakemake", ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(checkout), PYTHONUNBUFFERED="1")
    snakemake = python.parent / "snakemake"
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(
            [str(snakemake), "--cores", str(cores)], cwd=checkout, env=env, stdout=f, stderr=subprocess.STDOUT
        )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"demo in {checkout} failed (exit {proc.returncode}); see {log}")
    return wall


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", default="bd5d5a4", help="commit to compare against")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--python", type=Path, default=REPO / ".venv" / "bin" / "python")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--keep", action="store_true", help="keep the base worktree and logs")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="san-demo-speed-"))
    head = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    sides = {"base": work / "base", "head": work / "head"}
    for side, commit in (("base", args.base), ("head", head)):
        _git("worktree", "add", "--detach", str(sides[side]), commit)
    runs: dict[str, list[dict]] = {"base": [], "head": []}
    prepared: dict[str, str | None] = {}
    try:
        for side, path in sides.items():
            prepared[side] = prepare(path, args.python)
        for r in range(args.repeats):
            order = ("base", "head") if r % 2 == 0 else ("head", "base")
            for side in order:
                load = os.getloadavg()[0]
                log = work / f"{side}_{r}.log"
                print(f"[bench_demo_speed] repeat {r + 1}/{args.repeats}: {side} (load {load:.2f})", flush=True)
                wall = run_demo(sides[side], args.python, args.cores, log)
                runs[side].append(
                    {
                        "wall_s": round(wall, 1),
                        "load_before": round(load, 2),
                        "figures": demo_figures(sides[side] / "results"),
                    }
                )
                print(f"[bench_demo_speed]   {side}: {wall:.0f} s", flush=True)
    finally:
        if not args.keep:
            for path in sides.values():
                _git("worktree", "remove", "--force", str(path))
    med = {s: statistics.median(r["wall_s"] for r in runs[s]) for s in runs}
    record = {
        "base": _git("rev-parse", args.base),
        "head": head,
        "head_dirty": dirty,
        "cores": args.cores,
        "repeats": args.repeats,
        "prepared_before_timing": prepared,
        "median_wall_s": med,
        "speedup_base_over_head": round(med["base"] / med["head"], 3) if med["head"] > 0 else None,
        "runs": runs,
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform},
        "logs": str(work) if args.keep else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    print(json.dumps({k: record[k] for k in ("median_wall_s", "speedup_base_over_head")}))
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
