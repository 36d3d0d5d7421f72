"""Real spherical harmonics of unit directions (view dependence of colour), pure torch.

Degree ``D`` gives ``D**2`` components (``l = 0 .. D-1``), in the order and normalisation of
tiny-cuda-nn's ``SphericalHarmonics`` encoding (standard real SH, ``Y_0^0 = 0.2820947918``).
"""

from __future__ import annotations

import torch

MAX_DEGREE = 4


def spherical_harmonics(directions: torch.Tensor, degree: int = 4) -> torch.Tensor:
    """Real SH basis of ``directions``.

    Args:
        directions: ``Nx3`` unit vectors.
        degree: ``1..4``; number of bands.

    Returns:
        ``N x degree**2``.
    """
    if not 1 <= degree <= MAX_DEGREE:
        raise ValueError(f"spherical harmonics degree {degree} not in 1..{MAX_DEGREE}")
    x, y, z = directions.unbind(-1)
    out = [torch.full_like(x, 0.28209479177387814)]
    if degree > 1:
        out += [-0.48860251190291987 * y, 0.48860251190291987 * z, -0.48860251190291987 * x]
    if degree > 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [
            1.0925484305920792 * xy,
            -1.0925484305920792 * yz,
            0.94617469575755997 * zz - 0.31539156525251999,
            -1.0925484305920792 * xz,
            0.54627421529603959 * (xx - yy),
        ]
    if degree > 3:
        out += [
            0.59004358992664352 * y * (-3.0 * xx + yy),
            2.8906114426405538 * xy * z,
            0.45704579946446572 * y * (1.0 - 5.0 * zz),
            0.3731763325901154 * z * (5.0 * zz - 3.0),
            0.45704579946446572 * x * (1.0 - 5.0 * zz),
            1.4453057213202769 * z * (xx - yy),
            0.59004358992664352 * x * (-xx + 3.0 * yy),
        ]
    return torch.stack(out, dim=-1)
