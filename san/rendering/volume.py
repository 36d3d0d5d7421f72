"""Volume rendering as small functional cores on tensors (nerfacc style); no modules, no state.

Notation (per ray, ``S`` samples): densities ``sigma_i``, interval lengths ``delta_i``,
``alpha_i = 1 - exp(-sigma_i delta_i)``, transmittance ``T_i = prod_{j<i} (1 - alpha_j)``,
weights ``w_i = T_i alpha_i`` (the paper's Eq. 1). Every later stage (feature imitation, click
lifting) renders its own quantities with :func:`accumulate` and the same weights.
"""

from __future__ import annotations

import torch


def compute_weights(sigmas: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Volume-rendering weights.

    ``T_i`` is evaluated as ``exp(-sum_{j<i} sigma_j delta_j)``, which equals the cumulative product
    of ``1 - alpha_j`` exactly and is cheaper and better conditioned than ``torch.cumprod``.

    Args:
        sigmas: ``NxS`` non-negative densities.
        deltas: ``NxS`` interval lengths (same units as ``1 / sigma``).

    Returns:
        ``NxS`` weights, each row summing to at most 1.
    """
    tau = sigmas * deltas
    alphas = 1.0 - torch.exp(-tau)
    optical_depth = torch.cumsum(tau, dim=-1) - tau  # exclusive
    return alphas * torch.exp(-optical_depth)


def accumulate(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``sum_i w_i v_i``: ``weights NxS``, ``values NxSxC`` -> ``NxC``."""
    return torch.einsum("ns,nsc->nc", weights, values)


def accumulation(weights: torch.Tensor) -> torch.Tensor:
    """Opacity ``sum_i w_i``: ``NxS`` -> ``N``."""
    return weights.sum(dim=-1)


def expected_depth(weights: torch.Tensor, t: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Expected distance along the ray, normalised by the opacity so empty-ish rays are not pulled
    towards zero: ``sum_i w_i t_i / max(sum_i w_i, eps)``; ``weights, t NxS`` -> ``N``."""
    return (weights * t).sum(dim=-1) / weights.sum(dim=-1).clamp_min(eps)
