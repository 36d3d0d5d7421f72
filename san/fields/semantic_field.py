"""The semantic feature grid ``E_sem`` of feature imitation (paper Eq. 6-7).

A hash grid of its own (the release: 16 levels x 8 features = 128-d, finest resolution 512, table
2^19), queried at the frozen NeRF's sample positions *in the NeRF's grid domain* (``[0, 1]^3``
after the NeRF's own scene box / contraction mapping), so the two fields cover the same space.
The per-sample features are accumulated with the NeRF's frozen weights *before* any MLP (Eq. 6:
quadrature first, then the head), which keeps the expensive part ``D``-dimensional instead of
``C``-dimensional. The mesh-surface variant (Eq. 7) is the same sum with one sample of weight 1
per ray: the mesh hit, or for a miss a point far along the ray (a per-direction background, see
:func:`san.imitation.geometry.mesh_geometry`).
"""

from __future__ import annotations

import torch
from torch import nn

from san.encodings.hashgrid import make_hash_encoding
from san.fields.config import SemanticFieldConfig


def accumulate(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Quadrature ``sum_s w_s v_s``.

    Args:
        weights: ``NxS`` rendering weights ``T_s alpha_s`` (rows sum to the accumulation).
        values: ``NxSxD`` per-sample values.

    Returns:
        ``NxD``.
    """
    return torch.einsum("ns,nsd->nd", weights.to(values.dtype), values)


class SemanticField(nn.Module):
    """``E_sem``: points in the NeRF's grid domain ``[0, 1]^3`` -> ``D`` features.

    Args:
        config: grid hyperparameters.
        backend: hash-grid backend (``auto | torch | cpp | tcnn``, see :func:`make_hash_encoding`).
        device: where the grid lives.
        encoding: an already built encoding module (tests; overrides ``config``'s grid).
    """

    def __init__(
        self,
        config: SemanticFieldConfig = SemanticFieldConfig(),
        backend: str = "auto",
        device: torch.device | str | None = "cpu",
        encoding: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.encoding = encoding if encoding is not None else make_hash_encoding(config.grid(), backend, device)

    @property
    def out_dim(self) -> int:
        return int(self.encoding.out_dim)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """``Px3`` grid-domain points -> ``PxD`` features (float32)."""
        return self.encoding(points).float()

    def render(self, weights: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Eq. 6's inner sum: features accumulated along each ray with the frozen weights.

        Args:
            weights: ``NxS`` frozen rendering weights (``S = 1`` and 0/1 weights for Eq. 7).
            points: ``NxSx3`` grid-domain sample positions.

        Returns:
            ``NxD`` rendered grid features.
        """
        n, s = weights.shape
        feats = self(points.reshape(n * s, 3)).reshape(n, s, -1)
        return accumulate(weights, feats)
