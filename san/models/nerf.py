"""``NeRFModel``: sampler + fields + volume renderer, and its file format (:func:`save_nerf`).

Contract (``docs/architecture.md``): :meth:`NeRFModel.render_rays` returns a :class:`RenderOutput`
whose ``weights`` and world ``positions`` let later stages render anything else along the same
rays (:func:`san.rendering.volume.accumulate`), :meth:`NeRFModel.density` serves mesh extraction,
:meth:`NeRFModel.render_camera` renders whole images. Grids of later stages query
:meth:`NeRFModel.normalize_positions` so they live in the same domain as the density.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from san.cameras import Camera, RayBundle, generate_rays, single_camera
from san.config import from_dict, to_dict
from san.fields.nerf_field import NeRFField, ProposalField
from san.models.config import NeRFConfig
from san.rendering.samplers import SceneSpace, sample_pdf, uniform_edges
from san.rendering.volume import accumulate, compute_weights, expected_depth
from san.utils.checkpoint import CheckpointError
from san.utils.checks import require_finite
from san.utils.device import resolve_device
from san.utils.io import atomic_path, load_versioned_torch

RENDER_CHUNK_CPU = 1024
"""Rays per chunk of :meth:`NeRFModel.render_camera` on a CPU: a chunk's samples stay in cache.
Measured on the demo NeRF, one thread, a 192x192 view: 1024 rays 1.18 s of CPU time, 4096 rays
1.6-2.3 s, 16384 rays 3.0 s (``benchmarks/results/demo_stage_profile.md``)."""
RENDER_CHUNK_GPU = 4096
FILE_FORMAT = "san.nerf"
FILE_VERSION = 1


@dataclass
class RenderOutput:
    """What :meth:`NeRFModel.render_rays` returns for ``N`` rays with ``S`` samples each.

    Attributes:
        rgb: ``Nx3`` in ``[0, 1]``.
        depth: ``N`` expected distance along the ray (normalised world units, from the ray origin),
            divided by the opacity.
        accumulation: ``N`` opacity.
        weights: ``NxS`` volume-rendering weights of the radiance-field samples.
        positions: ``NxSx3`` sample positions in the normalised world frame (not NDC / contracted).
        features: ``NxC`` weight-accumulated output of the ``features`` callable, if given.
        edges: ``NxS+1`` sample-bin edges in the sampler's spacing ``s``.
        proposal_edges, proposal_weights: per proposal level, its bins and weights (for the losses).
    """

    rgb: torch.Tensor
    depth: torch.Tensor
    accumulation: torch.Tensor
    weights: torch.Tensor
    positions: torch.Tensor
    features: torch.Tensor | None = None
    edges: torch.Tensor | None = None
    proposal_edges: list[torch.Tensor] = dataclasses.field(default_factory=list)
    proposal_weights: list[torch.Tensor] = dataclasses.field(default_factory=list)


class NeRFModel(nn.Module):
    """Hash-grid NeRF for one scene space.

    In ``train()`` mode samples are stratified (random), in ``eval()`` mode deterministic.

    Args:
        config: hyperparameters.
        space: the scene geometry (NDC or contraction, bounds), see :class:`SceneSpace`.
        device: where parameters live (``None``: CUDA if available); it also decides the hash-grid
            backend when ``config.backend == "auto"``.
    """

    def __init__(self, config: NeRFConfig, space: SceneSpace, device: torch.device | str | None = None):
        super().__init__()
        self.config = config
        self.space = space
        self.field = NeRFField(config.field, config.backend, device)
        proposals = config.proposals if config.sampler.kind == "proposal" else ()
        self.proposals = nn.ModuleList(ProposalField(c, config.backend, device) for c in proposals)

    @property
    def device(self) -> torch.device:
        return self.field.encoding.params.device

    @property
    def encoding_backend(self) -> str:
        return self.field.encoding.backend

    def normalize_positions(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``...x3`` -> the grid domain ``[0, 1]^3`` every grid of this scene uses."""
        return self.space.normalize_positions(points)

    def geometry_features(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``Px3`` -> ``P x geo_feat_dim`` geometry features of the radiance field (the
        vector its colour MLP reads); see :class:`san.models.base.RadianceModel`."""
        return self.field.density_and_features(self.normalize_positions(points))[1]

    def bounding_box(self) -> np.ndarray:
        """``2x3`` world ``[min, max]`` of the region to extract a mesh from."""
        return self.space.bounding_box()

    def _positions(self, rays: RayBundle, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bin edges ``s NxK+1`` -> ``(positions NxKx3 at the bin centres, t NxK)``."""
        t_mid, _ = self.space.distances(rays, 0.5 * (s[:, 1:] + s[:, :-1]))
        return rays.origins[:, None, :] + t_mid[..., None] * rays.directions[:, None, :], t_mid

    def _deltas(self, rays: RayBundle, s: torch.Tensor) -> torch.Tensor:
        _, r = self.space.distances(rays, s)
        return r[:, 1:] - r[:, :-1]

    def sample(self, rays: RayBundle) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Bin edges ``NxS+1`` (in ``s``) for the radiance field, plus each proposal level's edges and weights."""
        sampler, N, dev = self.config.sampler, len(rays), rays.origins.device
        stratified = self.training
        if sampler.kind == "uniform":
            return uniform_edges(N, sampler.num_samples, stratified, dev), [], []
        edges = uniform_edges(N, sampler.proposal_samples[0], stratified, dev)
        all_edges, all_weights = [], []
        counts = list(sampler.proposal_samples[1:]) + [sampler.num_samples]
        for proposal, count in zip(self.proposals, counts):
            positions, _ = self._positions(rays, edges)
            K = positions.shape[1]
            sigma = proposal.density(self.space.normalize_positions(positions.reshape(-1, 3))).view(N, K)
            weights = compute_weights(sigma, self._deltas(rays, edges))
            all_edges.append(edges)
            all_weights.append(weights)
            edges = sample_pdf(edges, weights, count + 1, stratified, sampler.histogram_padding)
        return edges, all_edges, all_weights

    def render_rays(
        self, rays: RayBundle, features: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> RenderOutput:
        """Volume-render ``N`` rays (world frame, unit directions).

        Args:
            rays: the rays.
            features: optional ``positions Px3 (world) -> values PxC``; its values are accumulated
                with the same weights as the colour into ``RenderOutput.features``.
        """
        edges, prop_edges, prop_weights = self.sample(rays)
        positions, t_mid = self._positions(rays, edges)
        N, S = t_mid.shape
        flat = positions.reshape(-1, 3)
        dirs = rays.directions[:, None, :].expand(N, S, 3).reshape(-1, 3)
        sigma, rgb = self.field(self.space.normalize_positions(flat), dirs)
        weights = compute_weights(sigma.view(N, S), self._deltas(rays, edges))
        out = RenderOutput(
            rgb=accumulate(weights, rgb.view(N, S, 3)),
            depth=expected_depth(weights, t_mid),
            accumulation=weights.sum(-1),
            weights=weights,
            positions=positions,
            edges=edges,
            proposal_edges=prop_edges,
            proposal_weights=prop_weights,
        )
        if features is not None:
            values = features(flat)
            out.features = accumulate(weights, values.view(N, S, -1))
        return out

    @torch.no_grad()
    def density(self, points: torch.Tensor, chunk: int = 1 << 18) -> torch.Tensor:
        """Density at world points ``Px3`` -> ``P`` (zero outside the modelled region), no gradients.

        Units are those of the render distance: per world unit for unbounded scenes, per NDC unit
        for forward-facing ones.
        """
        out = []
        for i in range(0, points.shape[0], chunk):
            p = points[i : i + chunk].to(self.device, torch.float32)
            sigma = self.field.density(self.space.normalize_positions(p))
            out.append(torch.where(self.space.inside(p), sigma, torch.zeros_like(sigma)))
        return torch.cat(out) if out else points.new_zeros(0)

    @torch.no_grad()
    def render_camera(
        self, camera: Camera, distortion: dict[str, float] | None = None, chunk: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Render one whole camera (eval-mode sampling, no gradients), ``chunk`` rays at a time
        (``None``: :data:`RENDER_CHUNK_CPU` on a CPU, :data:`RENDER_CHUNK_GPU` otherwise); the
        :class:`san.models.base.RadianceModel` contract, like nerfstudio's ``get_outputs_for_camera``.

        Args:
            camera: one :class:`~san.cameras.Camera`: ``c2w 4x4`` OpenCV camera-to-world in the scene's
                normalised frame, ``K 3x3`` in pixels, ``width x height`` (cast to float32 on the
                model's device); a batch of one is accepted.
            distortion: OpenCV coefficients of the capture (:attr:`san.data.scene.Frame.distortion`),
                applied in ray generation; ``None``: a pinhole camera.
            chunk: rays per :meth:`render_rays` call.

        Returns:
            ``{"rgb": HxWx3 in [0, 1], "depth": HxW (distance along the ray), "accumulation": HxW}``
            on the model's device.

        Raises:
            san.cameras.CameraError: a batch of several cameras (render them one by one).
            TypeError: ``camera`` is not a :class:`~san.cameras.Camera`.
        """
        camera = single_camera(camera, "NeRFModel.render_camera")
        width, height = camera.width, camera.height
        if chunk is None:
            chunk = RENDER_CHUNK_CPU if self.device.type == "cpu" else RENDER_CHUNK_GPU
        was_training = self.training
        self.eval()
        try:
            c2w_t, K_t = camera.tensors(self.device)
            rays = generate_rays(c2w_t, K_t, width, height, distortion)
            parts: dict[str, list[torch.Tensor]] = {"rgb": [], "depth": [], "accumulation": []}
            for i in range(0, len(rays), chunk):
                out = self.render_rays(rays[i : i + chunk])
                parts["rgb"].append(out.rgb)
                parts["depth"].append(out.depth)
                parts["accumulation"].append(out.accumulation)
        finally:
            self.train(was_training)
        return {
            "rgb": torch.cat(parts["rgb"]).view(height, width, 3),
            "depth": torch.cat(parts["depth"]).view(height, width),
            "accumulation": torch.cat(parts["accumulation"]).view(height, width),
        }


def save_nerf(model: NeRFModel, path: str | os.PathLike) -> None:
    """Write ``model`` with its config and scene space to ``path`` atomically."""
    state = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "config": to_dict(model.config),
        "space": asdict(model.space),
        "encoding_backend": model.encoding_backend,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_nerf(path: str | os.PathLike, device: torch.device | str = "auto") -> NeRFModel:
    """Read a file written by :func:`save_nerf`; the hash-grid backend is re-chosen for ``device``."""
    state = load_versioned_torch(
        path, FILE_FORMAT, FILE_VERSION, CheckpointError, "NeRF model", "a san NeRF model file", "NeRF file"
    )
    dev = resolve_device(device) if isinstance(device, str) else device
    model = NeRFModel(from_dict(NeRFConfig, state["config"], "nerf.model"), SceneSpace(**state["space"]), dev)
    for name, value in state["state_dict"].items():
        require_finite(
            value,
            stage="load_nerf",
            what=f"{path}: weight {name}",
            hint="the NeRF diverged when it was trained; retrain it (lower nerf.lr)",
        )
    model.load_state_dict(state["state_dict"])
    model.eval()
    return model
