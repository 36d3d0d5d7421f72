"""The NeRF trainer: its config (config section ``nerf``), the training-ray sampler and the
optimisation loop with evaluation on test views; rule ``train_nerf``
(:mod:`san.pipeline.train_nerf`) drives it and writes the outputs.

Training: Adam (``lr`` decaying exponentially to ``lr_final`` over ``steps``), random rays from
all training pixels, loss = MSE + ``proposal_loss_weight`` x interlevel loss +
``distortion_loss_weight`` x distortion loss. :meth:`NeRFTrainer.state_dict` holds the model,
optimiser, schedule, step, RNG states, curve and elapsed time, so a resumed run is bit-for-bit.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from san.cameras import RayBundle, rays_from_pixels
from san.config import from_dict, with_preset
from san.data.images import load_image
from san.data.scene import Frame, Scene
from san.metrics import psnr, ssim
from san.models.nerf import NeRFConfig, NeRFModel
from san.rendering.samplers import SceneSpace, distortion_loss, interlevel_loss
from san.utils.checks import require_finite
from san.utils.io import atomic_path

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
        eval_chunk: rays per chunk when rendering test views.
        resume: resume from the newest matching checkpoint in ``out_dir/checkpoints``.
        model: the model's hyperparameters (:class:`san.models.nerf.NeRFConfig`).
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
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"nerf: invalid value(s) for {', '.join(bad)}")


def train_nerf_config(section: dict | None) -> TrainNeRFConfig:
    """The ``nerf`` config section (with an optional ``preset``) -> :class:`TrainNeRFConfig`."""
    return from_dict(TrainNeRFConfig, with_preset(TrainNeRFConfig.PRESETS, section, "nerf"), "nerf")


class RaySampler:
    """All training pixels of a scene; draws random rays (generated on the fly, distortion included).

    Colours are kept as ``uint8`` (3 bytes per pixel) so large captures fit in memory.
    """

    def __init__(self, frames: tuple[Frame, ...], background, device: torch.device):
        if not frames:
            raise ValueError("no training frames")
        self.device = device
        colors, offsets = [], [0]
        for f in frames:
            img = load_image(f.image, background)
            if img.shape[:2] != (f.height, f.width):
                raise ValueError(
                    f"{f.image}: image is {img.shape[1]}x{img.shape[0]}, cameras.json says {f.width}x{f.height}"
                )
            colors.append(torch.from_numpy(np.round(img * 255.0).astype(np.uint8)).view(-1, 3))
            offsets.append(offsets[-1] + f.width * f.height)
        self.colors = torch.cat(colors).to(device)
        self.offsets = torch.tensor(offsets, dtype=torch.int64, device=device)
        self.widths = torch.tensor([f.width for f in frames], dtype=torch.int64, device=device)
        self.c2w = torch.tensor(np.stack([f.c2w for f in frames]), dtype=torch.float32, device=device)
        self.K = torch.tensor(np.stack([f.K for f in frames]), dtype=torch.float32, device=device)
        keys = [tuple(sorted(f.distortion.items())) for f in frames]
        groups = sorted(set(keys))
        self.distortions = [dict(g) for g in groups]
        self.group = torch.tensor([groups.index(k) for k in keys], dtype=torch.int64, device=device)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def sample(self, n: int, generator: torch.Generator) -> tuple[RayBundle, torch.Tensor]:
        """``n`` random training rays and their colours ``nx3`` in ``[0, 1]``."""
        index = torch.randint(len(self), (n,), generator=generator, device="cpu").to(self.device)
        frame = torch.searchsorted(self.offsets, index, right=True) - 1
        local = index - self.offsets[frame]
        w = self.widths[frame]
        pixels = torch.stack([local % w, local // w], dim=-1).to(torch.float32) + 0.5
        origins = torch.empty(n, 3, device=self.device)
        directions = torch.empty(n, 3, device=self.device)
        for g, distortion in enumerate(self.distortions):
            sel = self.group[frame] == g if len(self.distortions) > 1 else slice(None)
            fr = frame[sel]
            rays = rays_from_pixels(pixels[sel], self.c2w[fr], self.K[fr], distortion)
            origins[sel], directions[sel] = rays.origins, rays.directions
        return RayBundle(origins, directions), self.colors[index].to(torch.float32) / 255.0


class NeRFTrainer:
    """One training run: model, optimiser, schedule, data and RNG, steppable and checkpointable.

    ``train_nerf`` drives it; benchmarks drive :meth:`step` themselves to time training alone.
    """

    def __init__(self, scene: Scene, config: TrainNeRFConfig, device: torch.device):
        self.scene, self.config, self.device = scene, config, device
        torch.manual_seed(config.seed)
        space = SceneSpace.from_scene(scene, config.model.sampler.ndc_margin, config.model.unbounded_far)
        self.model = NeRFModel(config.model, space, device)
        self.model.train()
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, betas=(0.9, 0.99), eps=config.adam_eps, fused=True
        )
        gamma = (config.lr_final / config.lr) ** (1.0 / config.steps)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.rays = RaySampler(scene.train_frames, scene.source.get("background"), device)
        self.step_count = 0
        self.elapsed = 0.0  # training wall seconds, accumulated over resumes
        self.curve: list[dict[str, float]] = []

    def step(self) -> dict[str, float]:
        """One optimisation step; returns ``loss``, ``mse``, ``psnr`` of the batch and the ``lr`` used."""
        cfg = self.config
        rays, target = self.rays.sample(cfg.rays_per_batch, self.generator)
        out = self.model.render_rays(rays)
        mse = torch.mean((out.rgb - target) ** 2)
        loss = mse
        if out.proposal_weights and cfg.proposal_loss_weight > 0:
            loss = loss + cfg.proposal_loss_weight * interlevel_loss(
                out.edges, out.weights, out.proposal_edges, out.proposal_weights
            )
        if cfg.distortion_loss_weight > 0:
            loss = loss + cfg.distortion_loss_weight * distortion_loss(out.edges, out.weights)
        lr = self.optimizer.param_groups[0]["lr"]
        require_finite(
            loss,
            stage="train_nerf",
            what=f"the loss at step {self.step_count + 1}",
            hint=f"training diverged (nerf.lr {cfg.lr:g} too high?) or the images/poses hold NaN",
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step_count += 1
        mse_v = float(mse.detach())
        return {"loss": float(loss.detach()), "mse": mse_v, "psnr": -10.0 * math.log10(max(mse_v, 1e-10)), "lr": lr}

    def state_dict(self) -> dict:
        return {
            "step": self.step_count,
            "elapsed": self.elapsed,
            "curve": list(self.curve),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step"])
        self.elapsed = float(state["elapsed"])
        self.curve = list(state["curve"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    @torch.no_grad()
    def evaluate(self, indices: list[int], render_dir: Path | None = None) -> dict[str, Any]:
        """PSNR / SSIM of the scene's frames ``indices`` rendered by the current model (optionally
        saving the renders as ``render_dir/{index:03d}.png``)."""
        background = self.scene.source.get("background")
        per_view = []
        for index in indices:
            f = self.scene.frames[index]
            out = self.model.render_camera(f.c2w, f.K, f.width, f.height, f.distortion, chunk=self.config.eval_chunk)
            pred = out["rgb"].clamp(0, 1).cpu()
            gt = torch.from_numpy(load_image(f.image, background))
            per_view.append(
                {"frame": index, "image": Path(f.image).name, "psnr": psnr(pred, gt), "ssim": ssim(pred, gt)}
            )
            if render_dir is not None:
                render_dir.mkdir(parents=True, exist_ok=True)
                with atomic_path(render_dir / f"{index:03d}.png") as tmp:
                    Image.fromarray((pred.numpy() * 255.0 + 0.5).astype(np.uint8)).save(tmp, format="PNG")
        mean = {k: float(np.mean([v[k] for v in per_view])) if per_view else float("nan") for k in ("psnr", "ssim")}
        return {**mean, "per_view": per_view}
