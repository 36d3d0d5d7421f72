"""A small in-memory feature cache (two maps, views of two sizes) written with the public writer."""

from __future__ import annotations

import numpy as np
import pytest

from san.cameras import look_at
from san.features.cache import write_feature_cache
from san.teachers.base import TeacherInfo

INFO = TeacherInfo("fake_untrained", 64, ((8, 8, 8), (4, 4, 4)), untrained=True)


def make_cache_arrays(n: int = 4, size: int = 32, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    shapes = [(size * 3 // 4, size, 3) if i < 2 else (size, size, 3) for i in range(n)]
    rgb = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in shapes]
    c2w = np.stack([look_at([np.cos(i), np.sin(i), 0.5], [0, 0, 0], [0, 0, 1]) for i in range(n)]).astype(np.float32)
    K = np.stack([np.array([[30.0, 0, size / 2], [0, 30.0, size / 2], [0, 0, 1]]) for _ in range(n)]).astype(np.float32)
    features = [rng.standard_normal((n, *shape)).astype(np.float32) for shape in INFO.feature_shapes]
    return {"rgb": rgb, "c2w": c2w, "K": K, "features": features, "is_augmented": [i >= 2 for i in range(n)]}


@pytest.fixture
def cache_arrays() -> dict:
    return make_cache_arrays()


@pytest.fixture
def cache_file(tmp_path, cache_arrays):
    path = tmp_path / "features" / "fake_untrained.h5"
    write_feature_cache(path, teacher=INFO, nerf_digest="0" * 64, settings={"seed": 0}, **cache_arrays)
    return path
