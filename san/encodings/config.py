"""Configuration of the hash-grid encoding (:mod:`san.encodings.hashgrid` builds it).

Imports no torch, trimesh or h5py: every Snakemake parse reads these classes
(``san.pipeline.settings``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Backend = Literal["auto", "torch", "cpp", "tcnn"]


@dataclass(frozen=True)
class HashGridConfig:
    """Hyperparameters of a multiresolution hash grid (the instant-ngp names)."""

    num_levels: int = 16
    features_per_level: int = 2
    log2_hashmap_size: int = 19
    base_resolution: int = 16
    max_resolution: int = 2048  # finest level's resolution over the unit cube
    init_scale: float = 1e-4  # parameters start uniform in [-init_scale, init_scale]

    def __post_init__(self) -> None:
        if self.num_levels < 1 or self.features_per_level < 1:
            raise ValueError("HashGridConfig: num_levels and features_per_level must be >= 1")
        if not 1 <= self.base_resolution <= self.max_resolution:
            raise ValueError("HashGridConfig: need 1 <= base_resolution <= max_resolution")

    @property
    def out_dim(self) -> int:
        return self.num_levels * self.features_per_level

    @property
    def per_level_scale(self) -> float:
        if self.num_levels == 1:
            return 1.0
        return math.exp(math.log(self.max_resolution / self.base_resolution) / (self.num_levels - 1))

    def level_layout(self) -> list[tuple[float, int, int, bool]]:
        """Per level ``(scale, resolution, table_size, dense)`` as tiny-cuda-nn computes them."""
        out = []
        max_params = 1 << self.log2_hashmap_size
        for level in range(self.num_levels):
            scale = self.base_resolution * self.per_level_scale**level - 1.0
            res = int(math.ceil(scale)) + 1
            dense_size = res**3
            size = min(max_params, dense_size)
            size = (size + 7) // 8 * 8
            out.append((scale, res, size, dense_size <= size))
        return out

    @property
    def num_entries(self) -> int:
        return sum(size for _, _, size, _ in self.level_layout())
