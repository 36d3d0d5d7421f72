"""Procedural textures of the demo scene (torch, float64; the noise lattice is float32): seeded
value noise and patterns.

Patterns are functions of a surface point in the object's local frame, so they stick to the
surface and are identical from every view. A pattern value is in ``[0, 1]`` (``0`` -> the
object's ``color``, ``1`` -> its ``color2``); the contrast is faded where one pixel's footprint
covers a whole pattern period, which keeps far-away checkers from aliasing.
"""

from __future__ import annotations

import math

import numpy as np
import torch

PERIOD = 32


class ValueNoise:
    """Seeded, periodic 3D value noise in ``[-1, 1]`` and its ``fbm`` sum.

    A ``PERIOD^3`` lattice of uniform random values (from ``numpy.random.default_rng(seed)``),
    trilinearly interpolated (``grid_sample``, float32 for speed); lattice spacing 1, so the
    noise repeats every ``PERIOD`` units.
    """

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        lattice = torch.from_numpy(rng.uniform(-1.0, 1.0, (PERIOD, PERIOD, PERIOD)).astype(np.float32))
        # one wrapped layer on each upper face so interpolation across the period is seamless
        lattice = torch.cat([lattice, lattice[:1]], dim=0)
        lattice = torch.cat([lattice, lattice[:, :1]], dim=1)
        lattice = torch.cat([lattice, lattice[:, :, :1]], dim=2)
        self.volume = lattice[None, None]  # 1x1xDxHxW, indexed [z, y, x]

    def __call__(self, p: torch.Tensor) -> torch.Tensor:
        """``Nx3`` points -> ``N`` noise values (same dtype as ``p``)."""
        q = torch.remainder(p.float(), PERIOD) / PERIOD * 2 - 1
        v = torch.nn.functional.grid_sample(
            self.volume, q.reshape(1, 1, 1, -1, 3), mode="bilinear", padding_mode="border", align_corners=True
        )
        return v.reshape(-1).to(p.dtype)

    def fbm(self, p: torch.Tensor, octaves: int = 3) -> torch.Tensor:
        """Fractal sum of ``octaves`` octaves (frequency x2, amplitude x0.5), about ``[-1, 1]``;
        one ``grid_sample`` call for all octaves."""
        scales = 2.0 ** torch.arange(octaves, dtype=p.dtype)
        shifts = 17.0 * torch.arange(octaves, dtype=p.dtype)
        q = p[None] * scales[:, None, None] + shifts[:, None, None]
        amps = 0.5 ** torch.arange(octaves, dtype=p.dtype)
        values = self(q.reshape(-1, 3)).reshape(octaves, -1)
        return (amps[:, None] * values).sum(0) / amps.sum()


def _parity(*cells: torch.Tensor) -> torch.Tensor:
    s = sum(torch.floor(c) for c in cells)
    return torch.remainder(s, 2.0)


def pattern(name: str, p: torch.Tensor, part: torch.Tensor, params: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Pattern value (``N`` in ``{0, 1}``) and its period in metres (``N``) at local points ``p``."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    az = torch.atan2(y, x)
    if name == "latlong_checker":  # 12 x 6 checker in longitude / latitude
        r = params["radius"]
        lat = torch.acos((z / r).clamp(-1, 1))
        value = _parity(az / (2 * math.pi) * 12, lat / math.pi * 6)
        period = torch.full_like(x, 2 * math.pi * r / 12)
    elif name == "face_checker":  # 5 x 5 squares on every face, in face coordinates
        h = torch.as_tensor(params["extents"], dtype=p.dtype) / 2
        cell = 2 * h / 5
        q = (p + h) / cell
        axes = torch.arange(3).expand(len(p), 3)
        in_plane = axes[axes != part[:, None]].reshape(-1, 2)
        value = _parity(q.gather(-1, in_plane[:, :1])[:, 0], q.gather(-1, in_plane[:, 1:])[:, 0])
        period = torch.full_like(x, float(cell.min()))
    elif name == "stripes":  # 16 vertical stripes on the side, 8 sectors on the caps, a band
        height = params["height"]
        band = ((z > 0.45 * height) & (z < 0.6 * height) & (part == 0)).to(p.dtype)
        sectors = torch.where(part == 0, az / (2 * math.pi) * 16, az / (2 * math.pi) * 8)
        value = torch.where(band > 0, torch.zeros_like(x), _parity(sectors))
        period = torch.full_like(x, 2 * math.pi * params["radius"] / 16)
    elif name == "spiral":  # two-start spiral stripes on the side, rings on the base
        pitch = params["height"] / 6
        turns = torch.where(part == 0, z / pitch + 2 * az / (2 * math.pi), torch.sqrt(x * x + y * y) / pitch)
        value = _parity(turns)
        period = torch.full_like(x, pitch * params["radius"] / math.hypot(params["radius"], params["height"]))
    elif name == "ground_checker":
        s = params["size"]
        value = _parity(x / s, y / s)
        period = torch.full_like(x, s)
    else:
        raise ValueError(f"unknown demo texture pattern {name!r}")
    return value, period


def antialias(value: torch.Tensor, period: torch.Tensor, footprint: torch.Tensor) -> torch.Tensor:
    """Fade a ``{0, 1}`` pattern towards its mean ``0.5`` as the pixel footprint nears a period."""
    fade = (1 - footprint / period).clamp(0, 1)
    return 0.5 + (value - 0.5) * fade


def mix(c0, c1, t: torch.Tensor) -> torch.Tensor:
    """``Nx3`` blend of colours ``c0``, ``c1`` (3-vectors) by ``t`` (``N``)."""
    c0 = torch.as_tensor(c0, dtype=t.dtype)
    c1 = torch.as_tensor(c1, dtype=t.dtype)
    return c0 + (c1 - c0) * t[:, None]


def smoothstep(e0: float, e1: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def sky(directions: torch.Tensor, noise: ValueNoise) -> torch.Tensor:
    """Dome colour (``Nx3``) by unit direction from the dome centre: zenith-to-horizon gradient,
    fbm clouds, and a band of hills around the horizon (azimuthal structure for pose/texture)."""
    dz = directions[:, 2].clamp(-1, 1)
    elev = torch.asin(dz)
    s = (elev / (math.pi / 2)).clamp(0, 1) ** 0.6
    rgb = mix((0.82, 0.86, 0.92), (0.25, 0.45, 0.82), s)
    clouds = smoothstep(0.05, 0.45, noise.fbm(directions * 3.0 + 31.0, octaves=4)) * smoothstep(0.04, 0.2, elev)
    rgb = rgb + (torch.tensor([0.97, 0.97, 0.97], dtype=rgb.dtype) - rgb) * (0.85 * clouds)[:, None]
    az = torch.atan2(directions[:, 1], directions[:, 0])
    ring = torch.stack([torch.cos(az), torch.sin(az), torch.zeros_like(az)], dim=-1)
    hill_top = 0.05 + 0.09 * (0.5 + 0.5 * noise.fbm(ring * 2.5 + 57.0, octaves=4))
    shade = 0.5 + 0.5 * noise.fbm(directions * 20.0 + 5.0, octaves=2)
    hills = mix((0.22, 0.32, 0.2), (0.42, 0.4, 0.36), shade)
    is_hill = (elev < hill_top)[:, None]
    return torch.where(is_hill, hills, rgb)
