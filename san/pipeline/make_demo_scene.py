"""Rule ``make_demo_scene``: the embedded procedural scene -> ``results/{dataset}/{scene}/scene/``.

The folder is a COLMAP capture (``images/``, ``sparse/0/*.txt``) that rule ``prepare_poses`` reads
like any other, plus ground truth (``depth/``, ``masks/``, ``meshes/``, ``scene_gt.json``); layout
in :mod:`san.data.demo.write`. It is written atomically (temporary folder, then one rename).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

from san.data.config import DemoSceneConfig
from san.data.demo import make_demo_scene as write_demo_scene

log = logging.getLogger("san")


def make_demo_scene(
    out_dir: str | os.PathLike,
    config: DemoSceneConfig = DemoSceneConfig(),
    threads: int = 1,
    benchmark_dir: str | os.PathLike | None = None,
    test_every: int = 8,
) -> Path:
    """Render the demo scene into ``out_dir`` (see :func:`san.data.demo.make_demo_scene`).

    Args:
        out_dir: the scene folder to (re)create.
        config: the ``demo_scene`` config section.
        threads: torch intra-op threads for the renderer (the rule's CPUs). One thread is the
            default: the renderer's many small vectorised ops gain little from more, and
            oversubscribed cores slow OpenMP down sharply.
        benchmark_dir: also write the ground-truth benchmark folder here
            (:func:`san.data.demo.benchmark.demo_benchmark`; layout :mod:`san.data.gt_layout`).
        test_every: the pipeline's ``poses.test_every`` (the benchmark's targets are the test views).

    Returns:
        ``out_dir`` as a :class:`Path`.
    """
    if benchmark_dir is not None and test_every < 2:  # before any rendering
        raise ValueError(
            f"make_demo_scene: poses.test_every = {test_every} leaves no training or no test view for the benchmark; need >= 2"
        )
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    start = time.perf_counter()
    try:
        out = write_demo_scene(out_dir, config)
        if benchmark_dir is not None:
            from san.data.demo.benchmark import demo_benchmark

            demo_benchmark(out, benchmark_dir, test_every)
    finally:
        torch.set_num_threads(previous)
    log.info(
        "make_demo_scene: seed %d, %d thread(s), done in %.1f s", config.seed, threads, time.perf_counter() - start
    )
    return out
