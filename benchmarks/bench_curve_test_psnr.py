"""What the held-out points of the NeRF training curve cost (``nerf.curve_test_every`` /
``nerf.curve_test_rays``, :meth:`san.models.nerf_trainer.NeRFTrainer.test_psnr`).

Builds the trainer of a prepared scene with a config's ``nerf`` section, times ``--steps`` training
steps and then ``test_psnr`` (first call: includes loading the test views; later calls: the render
of the fixed ray subset alone), and writes the seconds the curve's test points add to a whole run
beside the estimated training time, with the machine's load average. Example (the demo)::

    python benchmarks/bench_curve_test_psnr.py --cameras results/demo/demo/poses/cameras.json \\
        --config config/config.yaml --out benchmarks/results/curve_test_psnr.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
import yaml

from san.data.scene import load_scene
from san.models.nerf_trainer import NeRFTrainer, train_nerf_config
from san.utils.device import resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", required=True, help="a prepared scene's poses/cameras.json")
    parser.add_argument("--config", default="config/config.yaml", help="YAML whose nerf section is used")
    parser.add_argument("--steps", type=int, default=20, help="training steps timed for the per-step cost")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: stable on a shared machine)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    config = train_nerf_config(yaml.safe_load(Path(args.config).read_text()).get("nerf"))
    trainer = NeRFTrainer(load_scene(args.cameras), config, resolve_device(args.device))
    t = time.perf_counter()
    for _ in range(args.steps):
        trainer.step()
    step_s = (time.perf_counter() - t) / args.steps
    t = time.perf_counter()
    trainer.test_psnr()
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    trainer.test_psnr()
    again_s = time.perf_counter() - t
    points = -(-config.steps // config.curve_test_every) if config.curve_test_every else 0
    added = first_s + max(points - 1, 0) * again_s if points else 0.0
    record = {
        "cameras": args.cameras,
        "config": args.config,
        "steps": config.steps,
        "curve_test_every": config.curve_test_every,
        "curve_test_rays": config.curve_test_rays,
        "test_points": points,
        "train_step_seconds": round(step_s, 4),
        "test_psnr_first_seconds": round(first_s, 3),
        "test_psnr_seconds": round(again_s, 3),
        "added_seconds": round(added, 2),
        "training_seconds_estimate": round(step_s * config.steps, 1),
        "added_percent": round(100 * added / (step_s * config.steps), 2),
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "machine": platform.machine(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
