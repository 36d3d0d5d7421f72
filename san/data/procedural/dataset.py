"""Render many procedural scenes in parallel processes.

:func:`render_views` renders ``num_views`` views of each scene seed with a ``workers``-process
pool (one torch thread each); results come back in seed order, so the output does not depend on
``workers``. Image sizes are drawn per scene from :data:`VIEW_SIZES` (square and 4:3, landscape
and portrait, 128 and 192 px longest side: the sizes the pipeline feeds its teacher).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from san.data.procedural.scene import sample_scene

VIEW_SIZES: tuple[tuple[int, int], ...] = ((192, 192), (192, 192), (192, 144), (144, 192), (128, 128), (128, 96))
"""``(width, height)`` choices, drawn uniformly per scene."""


@dataclass(frozen=True)
class RenderedView:
    """One ground-truth view: ``rgb HxWx3 uint8``, ``ids HxW uint8`` (0 sky, 1 ground, 2.. objects),
    ``depth HxW float32`` (distance along the ray), its scene ``seed`` and ``view`` index."""

    seed: int
    view: int
    rgb: np.ndarray
    ids: np.ndarray
    depth: np.ndarray


def view_size(seed: int) -> tuple[int, int]:
    """``(width, height)`` of the views of scene ``seed`` (deterministic)."""
    rng = np.random.default_rng([seed, 7])
    return VIEW_SIZES[int(rng.integers(len(VIEW_SIZES)))]


def render_scene_views(seed: int, num_views: int, held_out: bool = False, supersample: int = 2) -> list[RenderedView]:
    """All ``num_views`` views of scene ``seed`` (in this process)."""
    from san.data.procedural.render import render_procedural_view

    w, h = view_size(seed)
    scene = sample_scene(seed, num_views, w, h, held_out=held_out)
    out = []
    for v in range(num_views):
        r = render_procedural_view(scene, v, supersample)
        out.append(RenderedView(seed, v, r["rgb"], r["ids"], r["depth"]))
    return out


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _task(args) -> list[RenderedView]:
    return render_scene_views(*args)


def render_views(
    seeds: Sequence[int],
    num_views: int,
    workers: int = 1,
    held_out: bool = False,
    supersample: int = 2,
    on_progress: Callable[[int, int, float], None] | None = None,
) -> list[RenderedView]:
    """Render ``num_views`` views of every scene in ``seeds`` with ``workers`` processes.

    Returns:
        ``len(seeds) * num_views`` views, scene by scene in ``seeds`` order.
    """
    tasks = [(int(s), num_views, held_out, supersample) for s in seeds]
    out: list[RenderedView] = []
    t0 = time.perf_counter()
    if workers <= 1:
        for i, t in enumerate(tasks):
            out += _task(t)
            if on_progress:
                on_progress(i + 1, len(tasks), time.perf_counter() - t0)
        return out
    with mp.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        for i, views in enumerate(pool.imap(_task, tasks, chunksize=1)):
            out += views
            if on_progress:
                on_progress(i + 1, len(tasks), time.perf_counter() - t0)
    return out
