"""The imitation head: rendered grid features (+ RGB, depth) -> one teacher feature map's channels.

Mirrors the authors' release and SAM's neck: a ``layers``-deep, ``width``-wide MLP with LeakyReLU,
the input concatenated again before layer ``skip``, a linear output to ``C`` channels and a final
``LayerNorm(C)`` over the channels of each pixel (SAM's ``LayerNorm2d`` ends its neck the same way).
It runs *after* quadrature (paper Eq. 6), on one vector per ray.
"""

from __future__ import annotations

import torch
from torch import nn

from san.imitation.config import FeatureHeadConfig


def head_input(
    grid: torch.Tensor,
    rgb: torch.Tensor | None,
    depth: torch.Tensor | None,
    config: FeatureHeadConfig,
    latent: torch.Tensor | None = None,
) -> torch.Tensor:
    """Concatenate the head input ``[grid, rgb, 1 / (1 + depth), latent]`` as configured.

    Args:
        grid: ``NxD`` rendered grid features.
        rgb: ``Nx3`` rendered colour (required when ``config.use_rgb``).
        depth: ``N`` distance along the ray; non-finite (a miss) becomes ``inf`` -> input ``0``.
        latent: ``NxL`` rendered NeRF geometry features (required when ``config.latent_dim``).

    Returns:
        ``N x config.input_dim(D)``.
    """
    parts = [grid]
    if config.use_rgb:
        if rgb is None:
            raise ValueError("FeatureHead: use_rgb is set but no rendered rgb was given")
        parts.append(rgb.to(grid.dtype))
    if config.use_depth:
        if depth is None:
            raise ValueError("FeatureHead: use_depth is set but no depth was given")
        d = torch.nan_to_num(depth.to(grid.dtype), nan=float("inf"), posinf=float("inf")).clamp_min(0)
        parts.append((1.0 / (1.0 + d))[:, None])
    if config.latent_dim:
        if latent is None or latent.shape[-1] != config.latent_dim:
            got = None if latent is None else latent.shape[-1]
            raise ValueError(f"FeatureHead: expected {config.latent_dim} latent features, got {got}")
        parts.append(latent.to(grid.dtype))
    return torch.cat(parts, dim=-1)


class FeatureHead(nn.Module):
    """``N x in_dim -> N x out_dim`` MLP with one skip connection and a final LayerNorm."""

    def __init__(self, in_dim: int, out_dim: int, config: FeatureHeadConfig = FeatureHeadConfig()):
        super().__init__()
        if config.layers < 1:
            raise ValueError(f"FeatureHead: layers must be >= 1, got {config.layers}")
        self.config = config
        self.skip = config.skip if 0 < config.skip < config.layers else -1
        dims_in = []
        for i in range(config.layers):
            d = in_dim if i == 0 else config.width
            if i == self.skip:
                d += in_dim
            dims_in.append(d)
        dims_out = [config.width] * (config.layers - 1) + [out_dim]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims_in, dims_out))
        self.act = nn.LeakyReLU(config.negative_slope)
        self.norm = nn.LayerNorm(out_dim) if config.layer_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, layer in enumerate(self.linears):
            if i == self.skip:
                h = torch.cat([h, x], dim=-1)
            h = layer(h)
            if i < len(self.linears) - 1:
                h = self.act(h)
        return self.norm(h)
