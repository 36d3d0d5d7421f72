"""The NeRF trainer: its config (config section ``nerf``), the training-ray sampler and the
optimisation loop with evaluation on test views; rule ``train_nerf``
(:mod:`san.pipeline.train_nerf`) drives it and writes the outputs.

Training: Adam (``lr`` decaying exponentially to ``lr_final`` over ``steps``), random rays from
all training pixels, loss = MSE + ``proposal_loss_weight`` x interlevel loss +
``distortion_loss_weight`` x distortion loss. :meth:`NeRFTrainer.test_psnr` measures the
held-out PSNR during training on a fixed subset of test-view rays. :meth:`NeRFTrainer.state_dict` holds the model,
optimiser, schedule, step, RNG states, curve and elapsed time, so a resumed run is bit-for-bit.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from san.cameras import RayBundle, rays_from_pixels
from san.config import from_dict, with_preset
from san.data.images import load_image
from san.data.scene import Frame, Scene
from san.metrics import psnr, ssim
from san.models.config import TrainNeRFConfig
from san.models.nerf import NeRFModel
from san.rendering.samplers import SceneSpace, distortion_loss, interlevel_loss
from san.utils.io import atomic_path
from san.utils.training import load_optimizer_state, optimizer_step

CURVE_COLUMNS = ("step", "loss", "psnr", "lr", "wall_seconds", "test_psnr")
"""Columns of the NeRF's ``training_curve.csv`` (rows: :attr:`NeRFTrainer.curve`, written by
:mod:`san.pipeline.train_nerf`)."""


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
        self.test_seconds = 0.0  # wall seconds spent in test_psnr, not counted in elapsed
        self._test_batch: tuple[RayBundle, torch.Tensor] | None = None

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
        hint = f"training diverged (nerf.lr {cfg.lr:g} too high?) or the images/poses hold NaN"
        optimizer_step(loss, self.optimizer, self.scheduler, stage="train_nerf", step=self.step_count + 1, hint=hint)
        self.step_count += 1
        mse_v = float(mse.detach())
        return {"loss": float(loss.detach()), "mse": mse_v, "psnr": -10.0 * math.log10(max(mse_v, 1e-10)), "lr": lr}

    @torch.no_grad()
    def test_psnr(self) -> float | None:
        """PSNR in dB of the current model on a fixed subset of the test views' pixels: ``curve_test_rays``
        pixels drawn once, uniformly over every test-view pixel, with a generator seeded by ``seed``
        (so every call, and a resumed run, scores the same rays). Rendered in eval mode (no
        stratification: no RNG is drawn, training is unchanged), in chunks of ``eval_chunk``
        rays, predictions clamped to ``[0, 1]``. ``None`` when the scene has no test view."""
        if not self.scene.test_frames:
            return None
        if self._test_batch is None:
            rays = RaySampler(self.scene.test_frames, self.scene.source.get("background"), self.device)
            self._test_batch = rays.sample(self.config.curve_test_rays, torch.Generator().manual_seed(self.config.seed))
            del rays
        bundle, target = self._test_batch
        was_training = self.model.training
        self.model.eval()
        try:
            chunk = self.config.eval_chunk
            pred = torch.cat([self.model.render_rays(bundle[i : i + chunk]).rgb for i in range(0, len(bundle), chunk)])
        finally:
            self.model.train(was_training)
        return psnr(pred.clamp(0, 1), target)

    def state_dict(self) -> dict:
        return {
            "step": self.step_count,
            "elapsed": self.elapsed,
            "test_seconds": self.test_seconds,
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
        self.test_seconds = float(state.get("test_seconds", 0.0))
        self.curve = list(state["curve"])
        self.model.load_state_dict(state["model"])
        load_optimizer_state(self.optimizer, state["optimizer"])
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
            out = self.model.render_camera(f.camera, f.distortion, chunk=self.config.eval_chunk)
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
