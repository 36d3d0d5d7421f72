"""Radiance field on a hash grid: density (exponential activation) and view-dependent colour.

Inputs are points already mapped into the grid domain ``[0, 1]^3`` (see
:meth:`san.rendering.samplers.SceneSpace.normalize_positions`) and unit world directions.

* density: ``hash grid -> MLP -> trunc_exp(raw[0])`` (``exp`` forward, gradient clamped);
* colour: ``[geo features (raw[1:]), SH_4(direction)] -> MLP -> sigmoid``.

:class:`ProposalField` is the density-only little sibling used by the proposal sampler.
"""

from __future__ import annotations

import torch
from torch import nn

from san.encodings.config import Backend
from san.encodings.hashgrid import make_hash_encoding
from san.encodings.sh import spherical_harmonics
from san.fields.config import NeRFFieldConfig, ProposalFieldConfig


class _TruncExp(torch.autograd.Function):
    """``exp(x)`` whose gradient uses ``exp(min(x, 15))`` (instant-ngp's trick against blow-ups)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.exp(x.clamp(max=15.0))


def trunc_exp(x: torch.Tensor) -> torch.Tensor:
    return _TruncExp.apply(x)


def mlp(in_dim: int, hidden_dim: int, out_dim: int, hidden_layers: int) -> nn.Sequential:
    """``hidden_layers`` ReLU layers of width ``hidden_dim`` then a linear output layer."""
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(hidden_layers):
        layers += [nn.Linear(dim, hidden_dim), nn.ReLU(inplace=True)]
        dim = hidden_dim
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


class NeRFField(nn.Module):
    """Density + colour field. ``backend`` / ``device`` go to :func:`make_hash_encoding`."""

    def __init__(self, config: NeRFFieldConfig, backend: Backend = "auto", device=None):
        super().__init__()
        self.config = config
        self.encoding = make_hash_encoding(config.grid, backend, device)
        self.density_mlp = mlp(self.encoding.out_dim, config.hidden_dim, 1 + config.geo_feat_dim, 1)
        self.color_mlp = mlp(
            config.geo_feat_dim + config.sh_degree**2, config.color_hidden_dim, 3, config.color_hidden_layers
        )
        self.to(self.encoding.params.device)

    def density_and_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x Px3`` in ``[0, 1]^3`` -> ``(sigma P, geo features P x geo_feat_dim)``."""
        h = self.density_mlp(self.encoding(x))
        return trunc_exp(h[:, 0] + self.config.density_bias), h[:, 1:]

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """``x Px3`` in ``[0, 1]^3`` -> ``sigma P``."""
        return self.density_and_features(x)[0]

    def forward(self, x: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x Px3`` in ``[0, 1]^3``, unit ``directions Px3`` -> ``(sigma P, rgb Px3 in [0, 1])``."""
        sigma, geo = self.density_and_features(x)
        sh = spherical_harmonics(directions, self.config.sh_degree)
        rgb = torch.sigmoid(self.color_mlp(torch.cat([geo, sh], dim=-1)))
        return sigma, rgb


class ProposalField(nn.Module):
    def __init__(self, config: ProposalFieldConfig, backend: Backend = "auto", device=None):
        super().__init__()
        self.config = config
        self.encoding = make_hash_encoding(config.grid, backend, device)
        self.mlp = mlp(self.encoding.out_dim, config.hidden_dim, 1, 1)
        self.to(self.encoding.params.device)

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """``x Px3`` in ``[0, 1]^3`` -> ``sigma P``."""
        return trunc_exp(self.mlp(self.encoding(x))[:, 0] + self.config.density_bias)
