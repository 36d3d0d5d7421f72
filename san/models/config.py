"""Configuration of the NeRF model (:mod:`san.models.nerf`) and its trainer
(:mod:`san.models.nerf_trainer`).

Imports no torch, trimesh or h5py: every Snakemake parse reads these classes
(``san.pipeline.settings``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from san.encodings.config import HashGridConfig
from san.fields.config import NeRFFieldConfig, ProposalFieldConfig
from san.rendering.config import SamplerConfig


def _default_proposals() -> tuple[ProposalFieldConfig, ...]:
    return (
        ProposalFieldConfig(),
        ProposalFieldConfig(
            grid=HashGridConfig(num_levels=5, features_per_level=2, log2_hashmap_size=17, max_resolution=256)
        ),
    )


@dataclass(frozen=True)
class NeRFConfig:
    """Model hyperparameters (the ``nerf.model`` config section).

    ``proposals`` has one entry per proposal level and must match ``sampler.proposal_samples``
    when ``sampler.kind == "proposal"`` (it is ignored for ``"uniform"``).
    """

    field: NeRFFieldConfig = dataclasses.field(default_factory=NeRFFieldConfig)
    sampler: SamplerConfig = dataclasses.field(default_factory=SamplerConfig)
    proposals: tuple[ProposalFieldConfig, ...] = dataclasses.field(default_factory=_default_proposals)
    backend: Literal["auto", "torch", "cpp", "tcnn"] = "auto"
    unbounded_far: float = 1000.0

    def __post_init__(self) -> None:
        if self.sampler.kind == "proposal" and len(self.proposals) != len(self.sampler.proposal_samples):
            raise ValueError(
                f"nerf.model: {len(self.proposals)} proposal field(s) but sampler.proposal_samples has "
                f"{len(self.sampler.proposal_samples)} entries"
            )


_CPU_MODEL: dict[str, Any] = {
    "field": {
        "grid": {
            "num_levels": 8,
            "features_per_level": 4,
            "log2_hashmap_size": 17,
            "base_resolution": 16,
            "max_resolution": 1024,
        },
        "hidden_dim": 64,
        "color_hidden_dim": 64,
        "color_hidden_layers": 2,
    },
    "sampler": {"kind": "proposal", "num_samples": 16, "proposal_samples": (48,)},
    "proposals": (
        {"grid": {"num_levels": 5, "features_per_level": 2, "log2_hashmap_size": 16, "max_resolution": 256}},
    ),
}


_PAPER_MODEL: dict[str, Any] = {
    "field": {
        "grid": {
            "num_levels": 16,
            "features_per_level": 2,
            "log2_hashmap_size": 19,
            "base_resolution": 16,
            "max_resolution": 2048,
        },
    },
    "sampler": {"kind": "proposal", "num_samples": 32, "proposal_samples": (128, 64)},
}


@dataclass(frozen=True)
class TrainNeRFConfig:
    """Options of rule ``train_nerf`` (config section ``nerf``; presets ``cpu`` and ``paper``).

    Attributes:
        steps: optimisation steps.
        rays_per_batch: rays per step.
        lr, lr_final: Adam learning rate, decayed exponentially from ``lr`` to ``lr_final``.
        adam_eps: Adam epsilon (instant-ngp uses 1e-15 for hash tables).
        proposal_loss_weight: weight of the proposal (interlevel) loss.
        distortion_loss_weight: weight of mip-NeRF 360's distortion loss (0 = off).
        seed: seeds parameters, ray batches and stratified sampling.
        checkpoint_every: steps between checkpoints (0 = none).
        log_every: steps between progress lines / training-curve rows.
        curve_test_every: steps between held-out points on the training curve (its ``test_psnr``
            column; the last step always has one; 0 = none): the PSNR of a fixed subset of
            ``curve_test_rays`` test-view pixels, rendered in eval mode. Costs one no-grad render of
            ``curve_test_rays`` rays per point and changes no training result (no RNG is drawn).
        curve_test_rays: size of that subset, drawn once (seeded by ``seed``) from every test-view pixel.
        eval_chunk: rays per chunk when rendering test views.
        resume: resume from the newest matching checkpoint in ``out_dir/checkpoints``.
        model: the model's hyperparameters (:class:`san.models.config.NeRFConfig`).
    """

    steps: int = dataclasses.field(default=10000, metadata={"minimum": 1})
    rays_per_batch: int = dataclasses.field(default=8192, metadata={"minimum": 1})
    lr: float = dataclasses.field(default=1e-2, metadata={"exclusiveMinimum": 0})
    lr_final: float = dataclasses.field(default=1e-3, metadata={"exclusiveMinimum": 0})
    adam_eps: float = 1e-15
    proposal_loss_weight: float = 1.0
    distortion_loss_weight: float = 0.0
    seed: int = 0
    checkpoint_every: int = dataclasses.field(default=1000, metadata={"minimum": 0})
    log_every: int = dataclasses.field(default=100, metadata={"minimum": 1})
    curve_test_every: int = dataclasses.field(default=250, metadata={"minimum": 0})
    curve_test_rays: int = dataclasses.field(default=4096, metadata={"minimum": 1})
    eval_chunk: int = 8192
    resume: bool = True
    model: NeRFConfig = dataclasses.field(default_factory=NeRFConfig)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "cpu": {
            "steps": 12000,
            "rays_per_batch": 512,
            "checkpoint_every": 2000,
            "log_every": 200,
            "eval_chunk": 1024,  # san.models.nerf.RENDER_CHUNK_CPU
            "model": _CPU_MODEL,
        },
        "paper": {"steps": 10000, "rays_per_batch": 8192, "checkpoint_every": 1000, "model": _PAPER_MODEL},
    }

    def __post_init__(self) -> None:
        checks = {
            "steps": self.steps >= 1,
            "rays_per_batch": self.rays_per_batch >= 1,
            "lr": self.lr > 0 and self.lr_final > 0,
            "checkpoint_every": self.checkpoint_every >= 0,
            "log_every": self.log_every >= 1,
            "curve_test_every": self.curve_test_every >= 0,
            "curve_test_rays": self.curve_test_rays >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"nerf: invalid value(s) for {', '.join(bad)}")
