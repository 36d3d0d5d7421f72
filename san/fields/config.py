"""Configuration of the radiance and semantic fields (:mod:`san.fields` builds them).

Imports no torch, trimesh or h5py: every Snakemake parse reads these classes
(``san.pipeline.settings``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from san.encodings.config import HashGridConfig


@dataclass(frozen=True)
class NeRFFieldConfig:
    """The radiance field's sizes."""

    grid: HashGridConfig = field(default_factory=HashGridConfig)
    hidden_dim: int = 64  # density MLP width (one hidden layer)
    geo_feat_dim: int = 15
    color_hidden_dim: int = 64
    color_hidden_layers: int = 2
    sh_degree: int = 4
    density_bias: float = -1.0  # added before the exponential: low initial density


@dataclass(frozen=True)
class ProposalFieldConfig:
    """A small density-only field that guides sampling (mip-NeRF 360's proposal MLP, on a hash grid)."""

    grid: HashGridConfig = field(
        default_factory=lambda: HashGridConfig(
            num_levels=5, features_per_level=2, log2_hashmap_size=17, max_resolution=128
        )
    )
    hidden_dim: int = 16
    density_bias: float = -1.0


@dataclass(frozen=True)
class SemanticFieldConfig:
    """Hyperparameters of the semantic hash grid (instant-ngp names, see :class:`HashGridConfig`)."""

    num_levels: int = 16
    features_per_level: int = 8
    log2_hashmap_size: int = 19
    base_resolution: int = 16
    max_resolution: int = 512
    init_scale: float = 1e-4

    def grid(self) -> HashGridConfig:
        return HashGridConfig(
            num_levels=self.num_levels,
            features_per_level=self.features_per_level,
            log2_hashmap_size=self.log2_hashmap_size,
            base_resolution=self.base_resolution,
            max_resolution=self.max_resolution,
            init_scale=self.init_scale,
        )

    @property
    def out_dim(self) -> int:
        return self.num_levels * self.features_per_level
