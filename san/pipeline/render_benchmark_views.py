"""Rule ``render_benchmark_views``: the NeRF renderings the ground-truth benchmark needs, once per scene.

The benchmark protocol (:mod:`san.benchmark`) renders every view it visits with the NeRF (RGB for
the teacher and the figure, depth to lift and track the prompts). Those renderings depend on the
NeRF and the cameras only, not on the imitation variant, and they are almost all of
``evaluate_benchmark``'s cost (87 % of a demo variant's time, profiled in
``benchmarks/results/demo_stage_profile.md``). This rule renders each camera of
:func:`san.benchmark.benchmark_cameras` once; every variant's ``evaluate_benchmark`` starts from
them (:func:`load_benchmark_renders`) and renders live only a camera missing from the file.

Output ``results/{dataset}/{scene}/benchmark/renders.pt`` (``torch.save``, readable with
``weights_only=True``; a workflow ``temp()`` file, removed once every variant is scored)::

    format "san.benchmark_renders", version 1, nerf_sha256 (of the model.pt rendered),
    renders: list of {c2w 4x4 float64, K 3x3 float64, width, height,
                      rgb HxWx3, depth HxW, accumulation HxW float32 (CPU)}
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from san.benchmark import CameraMemo, benchmark_cameras
from san.cameras import Camera
from san.evaluation.config import BenchmarkConfig
from san.utils.io import atomic_path

log = logging.getLogger("san")

FILE_FORMAT = "san.benchmark_renders"
FILE_VERSION = 1


class BenchmarkRendersError(ValueError):
    """A renders file that is unreadable, of another format, or of another NeRF; names the file."""


def render_benchmark_views(
    *,
    cameras: str | os.PathLike,
    model: str | os.PathLike,
    layout_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    config: BenchmarkConfig = BenchmarkConfig(),
    device: str = "auto",
) -> dict:
    """Render every camera the benchmark protocol visits (module docstring) and write ``out_path``.

    Args:
        cameras, model: the scene's ``poses/cameras.json`` and ``nerf/model.pt``.
        layout_dir: the ground-truth layout folder (:mod:`san.data.gt_layout`).
        out_path: ``benchmark/renders.pt``, written atomically.
        config: the ``benchmark`` config section (``max_size`` and ``propagation`` decide the cameras).
        device: ``auto | cpu | cuda[:N]``.

    Returns:
        ``{"renders": count, "pixels": total, "wall_s": seconds}``.

    Raises:
        san.data.gt_layout.LayoutError: a bad layout or a view missing from the scene (before rendering).
    """
    from san.models.nerf import load_nerf
    from san.pipeline.evaluate_benchmark import load_benchmark
    from san.utils.device import resolve_device
    from san.utils.io import sha256_file

    t0 = time.perf_counter()
    layout, _, views = load_benchmark(layout_dir, cameras)
    cams = benchmark_cameras(layout, views, config)
    dev = resolve_device(device)
    nerf = load_nerf(model, dev)
    log.info("render_benchmark_views: %d cameras of %d task(s) from %s", len(cams), len(layout.tasks), layout.root)
    renders = []
    for cam in cams:
        out = nerf.render_camera(cam)
        renders.append(
            {
                "c2w": torch.as_tensor(np.asarray(cam.c2w, dtype=np.float64)),
                "K": torch.as_tensor(np.asarray(cam.K, dtype=np.float64)),
                "width": int(cam.width),
                "height": int(cam.height),
                **{k: out[k].detach().to("cpu", torch.float32).contiguous() for k in ("rgb", "depth", "accumulation")},
            }
        )
    state = {"format": FILE_FORMAT, "version": FILE_VERSION, "nerf_sha256": sha256_file(model), "renders": renders}
    with atomic_path(out_path) as tmp:
        torch.save(state, tmp)
    summary = {
        "renders": len(renders),
        "pixels": int(sum(r["width"] * r["height"] for r in renders)),
        "wall_s": time.perf_counter() - t0,
    }
    log.info(
        "render_benchmark_views: %d renderings (%d pixels) in %.1f s",
        summary["renders"],
        summary["pixels"],
        summary["wall_s"],
    )
    return summary


def load_benchmark_renders(path: str | os.PathLike, memo: CameraMemo, model: str | os.PathLike, device) -> int:
    """Store the renderings of ``path`` in ``memo`` (moved to ``device``); returns their count.

    Raises:
        BenchmarkRendersError: ``path`` is unreadable, not a renders file, or was rendered from
            another ``model.pt`` than ``model`` (a stale file).
    """
    from san.utils.io import load_versioned_torch, sha256_file

    path = Path(path)
    state = load_versioned_torch(
        path,
        FILE_FORMAT,
        FILE_VERSION,
        BenchmarkRendersError,
        "benchmark renders",
        "a benchmark renders file",
        "renders file",
    )
    if state.get("nerf_sha256") != sha256_file(model):
        raise BenchmarkRendersError(
            f"{path}: rendered from another NeRF than {model}; rerun rule render_benchmark_views"
        )
    for r in state["renders"]:
        camera = Camera(r["c2w"].numpy(), r["K"].numpy(), int(r["width"]), int(r["height"]))
        memo.prefill(camera, {k: r[k].to(device) for k in ("rgb", "depth", "accumulation")})
    return len(state["renders"])
