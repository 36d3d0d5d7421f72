"""The C++ CPU hash-grid kernel against the pure-torch backend: the encoding alone, a NeRF training
step and a NeRF rendering on the demo scene (issue 19: the demo's critical path is NeRF arithmetic).

Both backends build the same model from the same seed (``CppHashEncoding`` draws the torch
backend's initial table); one thread (``torch.set_num_threads(1)``), as every per-scene job of the
demo runs. Timed with ``time.process_time`` (CPU seconds of this process, less sensitive to a
shared machine than wall time; both are recorded) after warm-up, backends interleaved per repeat so
a machine whose load changes does not favour one side; the median of ``--repeats`` is reported.

Writes ``--out`` (JSON): per backend and measurement the median milliseconds (CPU and wall), the
ratios torch / cpp (CPU time), the machine's load average and the kernel's load time. That both
backends compute the same encoding and gradient is the tests' job (``tests/encodings``); the demo's
figures with each backend are compared in ``benchmarks/results/demo_stage_profile.md``. Usage (after ``make demo`` or at least its ``prepare_poses``)::

    python benchmarks/bench_hashgrid_cpu.py --scene results/demo/demo/poses/cameras.json \\
        --out benchmarks/results/hashgrid_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from san.data.scene import load_scene
from san.encodings.hashgrid import cpu_kernel_error, load_cpu_kernel, make_hash_encoding
from san.models.nerf_trainer import NeRFTrainer, train_nerf_config

BACKENDS = ("torch", "cpp")


def _timed(fn, repeats: int) -> tuple[float, float]:
    """Median (CPU ms, wall ms) of ``repeats`` calls of ``fn``."""
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append((time.process_time() - c0) * 1e3)
        wall.append((time.perf_counter() - w0) * 1e3)
    return statistics.median(cpu), statistics.median(wall)


def bench_encoding(nerf_grid, points: int, repeats: int) -> dict:
    out = {}
    x = torch.rand(points, 3, generator=torch.Generator().manual_seed(0))
    encodings = {}
    for b in BACKENDS:
        torch.manual_seed(0)
        encodings[b] = make_hash_encoding(nerf_grid, b, "cpu")
    g = torch.randn(points, nerf_grid.out_dim, generator=torch.Generator().manual_seed(1))

    def fwd_bwd(enc):
        enc.params.grad = None
        enc(x).backward(g)

    def no_grad(enc):
        with torch.no_grad():
            enc(x)

    for enc in encodings.values():  # warm-up
        no_grad(enc)
        fwd_bwd(enc)
    for name, fn in (("encode_no_grad", no_grad), ("encode_forward_backward", fwd_bwd)):
        for b, enc in encodings.items():
            out.setdefault(name, {})[b] = _timed(lambda fn=fn, enc=enc: fn(enc), repeats)
    return out


def bench_nerf(scene, steps: int, warmup: int, render_size: int) -> dict:
    trainers = {}
    for b in BACKENDS:
        config = train_nerf_config({"preset": "cpu", "steps": 2000, "model": {"backend": b}})
        trainers[b] = NeRFTrainer(scene, config, torch.device("cpu"))
        assert trainers[b].model.field.encoding.backend == b
    step_ms = {b: ([], []) for b in BACKENDS}
    for i in range(warmup + steps):
        for b, t in trainers.items():
            c0, w0 = time.process_time(), time.perf_counter()
            t.step()
            if i >= warmup:
                step_ms[b][0].append((time.process_time() - c0) * 1e3)
                step_ms[b][1].append((time.perf_counter() - w0) * 1e3)
    camera = scene.test_frames[0].camera.resized(render_size)
    render = {}
    for b, t in trainers.items():
        t.model.render_camera(camera)
        render[b] = _timed(lambda t=t: t.model.render_camera(camera), 3)
    return {
        "train_step": {b: (statistics.median(c), statistics.median(w)) for b, (c, w) in step_ms.items()},
        f"render_{render_size}px": render,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scene", type=Path, default=Path("results/demo/demo/poses/cameras.json"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/hashgrid_cpu.json"))
    ap.add_argument("--points", type=int, default=24576, help="points of the encoding-only timing (512 rays x 48)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--steps", type=int, default=60, help="timed NeRF steps per backend (after --warmup)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--render-size", type=int, default=192)
    args = ap.parse_args()
    torch.set_num_threads(1)
    c0 = time.perf_counter()
    kernel = load_cpu_kernel()
    build_s = time.perf_counter() - c0
    if kernel is None:
        raise SystemExit(f"the C++ CPU kernel did not build: {cpu_kernel_error()}")
    scene = load_scene(args.scene)
    load_before = os.getloadavg()[0]
    trainer_grid = train_nerf_config({"preset": "cpu"}).model.field.grid
    timings = bench_encoding(trainer_grid, args.points, args.repeats)
    timings.update(bench_nerf(scene, args.steps, args.warmup, args.render_size))
    ratios = {k: round(v["torch"][0] / v["cpp"][0], 3) for k, v in timings.items()}
    result = {
        "what": "C++ CPU hash-grid kernel vs pure-torch backend, 1 thread; (CPU ms, wall ms) medians",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "kernel_load_s": round(build_s, 1),
        "grid": vars(trainer_grid) | {"num_entries": trainer_grid.num_entries},
        "points": args.points,
        "nerf_steps_timed": args.steps,
        "timings_ms": {k: {b: [round(t, 2) for t in v[b]] for b in BACKENDS} for k, v in timings.items()},
        "speedup_torch_over_cpp_cpu_time": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["speedup_torch_over_cpp_cpu_time"], indent=2))


if __name__ == "__main__":
    main()
