"""Configuration of rule ``train_imitation``: the ``imitation:`` section and the ablation variants.

:class:`TrainImitationConfig` is flat (so that ``preset: cpu | paper`` plus single-key overrides
work); :meth:`TrainImitationConfig.field_config` and :meth:`TrainImitationConfig.head_config`
build the nested dataclasses of the model. :func:`variant_config` turns a variant *name* into the
switches it flips (:data:`VARIANT_OVERRIDES`):

=========  ==============================================================================
full       camera augmentation, FIFO cache with ``fresh_fraction`` fresh views, volumetric,
           cross-scale correlation loss (when the teacher has several maps)
no_aug     no camera augmentation: fresh views re-render training cameras, the cache's
           augmented entries are not used
no_cache   every step renders and encodes a fresh view (``fresh_fraction = 1``)
mesh       one surface point per ray from the extracted mesh (Eq. 7), no volume rendering
no_corr    no cross-scale correlation loss (same as ``full`` for single-map teachers)
=========  ==============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Mapping

from san.config import ConfigError, from_dict, with_preset
from san.fields.config import SemanticFieldConfig


@dataclass(frozen=True)
class TrainImitationConfig:
    """``imitation:`` section of ``config.yaml`` (defaults = the ``paper`` preset).

    Attributes:
        steps: optimisation steps (one view per step).
        rays_per_step: feature-map pixels rendered per map and step, drawn at random from the
            view's valid region; ``0`` renders every valid pixel (SAM: up to 64x64 = 4096).
        grid_levels, grid_features, grid_log2_hashmap_size, grid_base_resolution,
            grid_max_resolution: the semantic hash grid (release: 16 x 8 = 128-d, 2^19, 512).
        head_width, head_layers, head_skip: the MLP head (release: 5 x 256 with a skip).
        head_rgb, head_depth: feed the ray's rendered RGB / depth to the head besides the grid
            features (the mesh variant never uses RGB: it has no volume rendering).
        head_latent: also feed the NeRF's own geometry features (the vector its colour MLP reads),
            volume-rendered with the frozen weights, when the NeRF exposes them (volumetric
            variants only; an addition of ``san``, the release feeds the grid vector alone).
        lr_grid, lr_head: Adam learning rates, decayed exponentially to ``lr_final_ratio`` times
            their value at the last step.
        init_from_teacher: start every head's final LayerNorm at the teacher's per-channel mean
            (bias) and ``init_gain`` x standard deviation (weight), measured on the seeded cache
            views, instead of unit variance around zero.
        max_samples_per_ray: keep the ray's largest NeRF weights only (``0``: all samples); the
            dropped weights are tiny for a converged NeRF and the grid is then queried far less.
        cache_geometry: keep each cached view's frozen NeRF weights/positions at the feature
            resolution, so the NeRF runs once per view instead of once per step.
        cache_capacity: FIFO size (paper: 256; the ``cpu`` preset keeps it). It is seeded with
            the feature cache's views (a seeded random subset when the file holds more); fresh views
            replace the oldest entries, so a FIFO smaller than the seeded views plus the run's fresh
            views drops the training views themselves (fern, 1500 steps, capacity 64: training-view
            cosine 0.862; 256: 0.901).
        fresh_fraction: probability that a step renders and encodes a new view (paper: 0.25;
            the ``no_cache`` variant uses 1).
        correlation_weight: weight of the cross-scale correlation loss (Eq. 9-11).
        fov_range_deg: vertical field of view of augmented cameras.
        render_size: longest side of fresh renderings given to the teacher (``None``: the feature
            cache's ``render_size``).
        render_chunk: rays per NeRF call.
        checkpoint_every: steps between checkpoints (``0``: never).
        log_every: steps between ``training_curve.csv`` rows / progress lines.
        eval_views: held-out (test) and training views each on which the stage reports cosine /
            MSE against the teacher before and after training (``0``: none).
        backend: hash-grid backend ``auto | torch | cpp | tcnn`` (:func:`san.encodings.hashgrid.make_hash_encoding`).
    """

    steps: int = 10_000
    rays_per_step: int = 0
    grid_levels: int = 16
    grid_features: int = 8
    grid_log2_hashmap_size: int = 19
    grid_base_resolution: int = 16
    grid_max_resolution: int = 512
    head_width: int = 256
    head_layers: int = 5
    head_skip: int = 2
    head_rgb: bool = True
    head_depth: bool = True
    head_latent: bool = True
    lr_grid: float = 1e-2
    lr_head: float = 1e-3
    lr_final_ratio: float = 0.1
    init_from_teacher: bool = True
    init_gain: float = 1.0
    max_samples_per_ray: int = 32
    cache_geometry: bool = True
    cache_capacity: int = 256
    fresh_fraction: float = 0.25
    correlation_weight: float = 1.0
    fov_range_deg: tuple[float, float] = (50.0, 70.0)
    render_size: int | None = None
    render_chunk: int = 8192
    checkpoint_every: int = 1000
    log_every: int = field(default=50, metadata={"minimum": 1})
    eval_views: int = 8
    backend: str = "auto"

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "cpu": {
            "steps": 1500,
            "rays_per_step": 1024,
            "grid_levels": 12,
            "grid_features": 4,
            "grid_log2_hashmap_size": 17,
            "grid_max_resolution": 256,
            "head_width": 128,
            "head_layers": 4,
            "lr_head": 2e-3,
            "max_samples_per_ray": 8,
            "checkpoint_every": 500,
            "log_every": 25,
            "eval_views": 3,
        },
        "paper": {},
    }

    def __post_init__(self) -> None:
        problems = []
        if self.steps < 1:
            problems.append(f"steps must be >= 1, got {self.steps}")
        if self.rays_per_step < 0:
            problems.append(f"rays_per_step must be >= 0, got {self.rays_per_step}")
        if not 0.0 <= self.fresh_fraction <= 1.0:
            problems.append(f"fresh_fraction must be in [0, 1], got {self.fresh_fraction}")
        if self.cache_capacity < 1:
            problems.append(f"cache_capacity must be >= 1, got {self.cache_capacity}")
        if not 0.0 < self.lr_final_ratio <= 1.0:
            problems.append(f"lr_final_ratio must be in (0, 1], got {self.lr_final_ratio}")
        if self.max_samples_per_ray < 0:
            problems.append(f"max_samples_per_ray must be >= 0, got {self.max_samples_per_ray}")
        if self.backend not in ("auto", "torch", "cpp", "tcnn"):
            problems.append(f"backend {self.backend!r} is not one of auto, torch, cpp, tcnn")
        if self.log_every < 1:
            problems.append(f"log_every must be >= 1, got {self.log_every}")
        if problems:
            raise ConfigError("imitation: " + "; ".join(problems))

    def field_config(self) -> SemanticFieldConfig:
        return SemanticFieldConfig(
            num_levels=self.grid_levels,
            features_per_level=self.grid_features,
            log2_hashmap_size=self.grid_log2_hashmap_size,
            base_resolution=self.grid_base_resolution,
            max_resolution=self.grid_max_resolution,
        )

    def head_config(self, mesh_surface: bool = False, latent_dim: int = 0) -> FeatureHeadConfig:
        """The heads' shape; ``latent_dim`` is the NeRF's geometry-feature size (used only when
        ``head_latent`` is set and the variant is volumetric)."""
        return FeatureHeadConfig(
            width=self.head_width,
            layers=self.head_layers,
            skip=self.head_skip,
            use_rgb=self.head_rgb and not mesh_surface,
            use_depth=self.head_depth,
            latent_dim=latent_dim if self.head_latent and not mesh_surface else 0,
        )


def imitation_config(section: Mapping[str, Any] | None = None) -> TrainImitationConfig:
    """``imitation:`` mapping (``preset`` plus overrides) -> :class:`TrainImitationConfig`."""
    return from_dict(TrainImitationConfig, with_preset(TrainImitationConfig.PRESETS, section, "imitation"), "imitation")


@dataclass(frozen=True)
class VariantConfig:
    """The switches an ablation variant sets (see the module docstring)."""

    name: str = "full"
    augment: bool = True
    fresh_fraction: float = 0.25
    mesh_surface: bool = False
    correlation_loss: bool = True


VARIANT_OVERRIDES: dict[str, dict[str, Any]] = {
    "full": {},
    "no_aug": {"augment": False},
    "no_cache": {"fresh_fraction": 1.0},
    "mesh": {"mesh_surface": True},
    "no_corr": {"correlation_loss": False},
}
VARIANTS: tuple[str, ...] = tuple(VARIANT_OVERRIDES)
"""The ablation variants, in Table 2's order: the one list the config, the report and the
workflow's ``variant`` wildcard use."""


def variant_config(name: str, config: TrainImitationConfig = TrainImitationConfig()) -> VariantConfig:
    """The :class:`VariantConfig` of variant ``name``; ``full`` takes ``fresh_fraction`` from ``config``."""
    if name not in VARIANT_OVERRIDES:
        raise ConfigError(f"variant {name!r} is not one of {sorted(VARIANT_OVERRIDES)}")
    base = VariantConfig(name=name, fresh_fraction=config.fresh_fraction)
    return replace(base, **VARIANT_OVERRIDES[name])


@dataclass(frozen=True)
class FeatureHeadConfig:
    """Shape of a :class:`FeatureHead`.

    Attributes:
        width: hidden width.
        layers: number of linear layers, the output layer included (``>= 1``).
        skip: index of the hidden layer whose input is concatenated with the head input again
            (``0`` or ``>= layers``: no skip).
        negative_slope: LeakyReLU slope.
        layer_norm: end with ``LayerNorm(C)`` (affine).
        use_rgb: the head input includes the ray's rendered RGB (3 values).
        use_depth: the head input includes ``1 / (1 + depth)`` (``0`` for rays that hit nothing).
        latent_dim: size of the NeRF's rendered geometry features in the head input (``0``: none).
    """

    width: int = 256
    layers: int = 5
    skip: int = 2
    negative_slope: float = 0.01
    layer_norm: bool = True
    use_rgb: bool = True
    use_depth: bool = True
    latent_dim: int = 0

    def input_dim(self, grid_dim: int) -> int:
        return grid_dim + 3 * self.use_rgb + self.use_depth + self.latent_dim
