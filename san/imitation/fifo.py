"""The FIFO view cache of feature imitation (paper Sec. 4.3, "Caching Mechanism").

Each entry is a camera with the teacher's features of the NeRF's rendering from it. The cache is
seeded from the HDF5 feature cache; every step :func:`draw_view` either renders and encodes a
fresh view (probability ``fresh_fraction``), which replaces the oldest entry once the cache is
full, or reuses a random cached one. ``fresh_fraction = 0`` never calls the teacher (training from
the HDF5 file alone); ``1`` calls it every step (the no-cache ablation).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch


@dataclass
class ViewEntry:
    """One cached view.

    Attributes:
        c2w: ``4x4`` float32 camera-to-world (normalised scene frame, OpenCV).
        K: ``3x3`` float32 intrinsics of the image the teacher saw.
        width, height: that image's size.
        features: per teacher map, ``Cxhxw`` float16 (CPU) over the padded square input.
        is_augmented: interpolated camera (``True``) or a training camera.
        cache_index: row in the HDF5 feature cache, ``-1`` for a view rendered during training.
        geometry: per map, the frozen ray geometry of the valid cells, filled lazily by the trainer
            (derived data: never checkpointed, recomputed on demand).
    """

    c2w: torch.Tensor
    K: torch.Tensor
    width: int
    height: int
    features: list[torch.Tensor]
    is_augmented: bool
    cache_index: int = -1
    geometry: list | None = field(default=None, repr=False)

    def state(self) -> dict:
        """Checkpointable form: a reference for HDF5 rows, the full tensors for fresh views."""
        if self.cache_index >= 0:
            return {"cache_index": self.cache_index}
        return {
            "c2w": self.c2w,
            "K": self.K,
            "width": self.width,
            "height": self.height,
            "features": self.features,
            "is_augmented": self.is_augmented,
        }


class FeatureFIFO:
    """First-in-first-out cache of :class:`ViewEntry` with capacity ``capacity``."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"FeatureFIFO: capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._entries: collections.deque[ViewEntry] = collections.deque(maxlen=self.capacity)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[ViewEntry]:
        return iter(self._entries)

    def __getitem__(self, i: int) -> ViewEntry:
        return self._entries[i]

    @property
    def full(self) -> bool:
        return len(self._entries) == self.capacity

    def push(self, entry: ViewEntry) -> ViewEntry | None:
        """Append ``entry`` (newest); returns the evicted oldest entry when the cache was full."""
        evicted = self._entries[0] if self.full else None
        self._entries.append(entry)
        return evicted

    def sample(self, rng: np.random.Generator) -> ViewEntry:
        """A uniformly random entry."""
        if not self._entries:
            raise IndexError("FeatureFIFO.sample: the cache is empty")
        return self._entries[int(rng.integers(len(self._entries)))]

    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "entries": [e.state() for e in self._entries]}

    def load_state_dict(self, state: dict, load_cached: Callable[[int], ViewEntry]) -> None:
        """Restore entries; HDF5 rows are re-read with ``load_cached(index)``."""
        self.capacity = int(state["capacity"])
        self._entries = collections.deque(maxlen=self.capacity)
        for s in state["entries"]:
            self._entries.append(load_cached(s["cache_index"]) if "cache_index" in s else ViewEntry(**s))


def draw_view(
    fifo: FeatureFIFO,
    fresh_fraction: float,
    rng: np.random.Generator,
    make_fresh: Callable[[], ViewEntry],
) -> tuple[ViewEntry, bool]:
    """One step's view: ``(entry, fresh)``.

    With probability ``fresh_fraction`` (and always while the cache is empty) ``make_fresh()`` is
    called (render + teacher) and its entry pushed; otherwise a cached entry is drawn uniformly.
    One uniform number is drawn from ``rng`` every call, so the random stream does not depend on the
    cache's fill state.

    Raises:
        RuntimeError: the cache is empty and ``fresh_fraction`` is 0 (nothing to train on).
    """
    u = float(rng.random())
    if len(fifo) == 0 and fresh_fraction <= 0.0:
        raise RuntimeError("the view cache is empty and fresh_fraction is 0: give a feature cache with views")
    if len(fifo) == 0 or u < fresh_fraction:
        entry = make_fresh()
        fifo.push(entry)
        return entry, True
    return fifo.sample(rng), False
