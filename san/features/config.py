"""Configuration of the feature-cache writer (:mod:`san.features.build`) and the cache's compression
names (:mod:`san.features.cache`).

Imports no torch, trimesh or h5py: every Snakemake parse reads these classes
(``san.pipeline.settings``).
"""

from __future__ import annotations

from dataclasses import dataclass

COMPRESSION_FILTERS: dict[str, dict] = {
    "shuffle_gzip": {"shuffle": True, "compression": "gzip", "compression_opts": 4},
    "gzip": {"compression": "gzip", "compression_opts": 4},
    "shuffle_lzf": {"shuffle": True, "compression": "lzf"},
    "lzf": {"compression": "lzf"},
    "none": {},
}
"""Compression name -> ``h5py`` filter arguments (all built into every HDF5/h5py build, so any
reader opens the file). Measured on a real cache by ``benchmarks/bench_cache_compression.py``
(``benchmarks/results/cache_compression.json``): LZF saves about nothing on float16 features,
the byte shuffle before gzip is what makes them compress."""


COMPRESSIONS = tuple(COMPRESSION_FILTERS)


DEFAULT_COMPRESSION = "shuffle_gzip"


@dataclass(frozen=True)
class CacheFeaturesConfig:
    """``features:`` section of ``config.yaml``.

    Attributes:
        num_augmented: interpolated cameras added to the training views.
        render_size: side of augmented (square) views and longest side of training views, pixels.
        fov_range: ``(low, high)`` vertical field of view of augmented views, degrees.
        batch_size: views rendered, then encoded together, per step.
        seed: seed of the camera augmentation.
        compression: HDF5 compression of renderings and features, one of
            :data:`san.features.config.COMPRESSIONS` (``shuffle_gzip``: about 19 % smaller float16
            features than none or lzf, measured by ``benchmarks/bench_cache_compression.py``).
    """

    num_augmented: int = 100
    render_size: int = 512
    fov_range: tuple[float, float] = (50.0, 70.0)
    batch_size: int = 4
    seed: int = 0
    compression: str = DEFAULT_COMPRESSION

    def __post_init__(self) -> None:
        if self.num_augmented < 0:
            raise ValueError(f"features.num_augmented must be >= 0, got {self.num_augmented}")
        if self.render_size < 16:
            raise ValueError(f"features.render_size must be >= 16, got {self.render_size}")
        if self.batch_size < 1:
            raise ValueError(f"features.batch_size must be >= 1, got {self.batch_size}")
        if not 0 < self.fov_range[0] <= self.fov_range[1] < 180:
            raise ValueError(f"features.fov_range must satisfy 0 < low <= high < 180, got {self.fov_range}")
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"features.compression {self.compression!r} is not one of {COMPRESSIONS}")
