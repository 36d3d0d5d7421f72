"""Ray intersections of the procedural shapes that the demo scene lacks: torus and capsule.

Same contract as :mod:`san.data.demo.geometry` (whose sphere, box, cylinder and cone are reused):
``intersect_*(o, d, ...)`` takes local ray origins / unit directions (``Nx3`` float64) and returns
``(t N, part N long)`` with ``t = inf`` for a miss; ``normal_*(p, part, ...)`` gives outward unit
normals at local hit points.

Local frames:

* torus: centred at the origin, axis ``+z``; ``major`` = distance from the axis to the tube
  centre, ``minor`` = tube radius (``minor < major``). Implicit surface
  ``(|p|^2 + R^2 - r^2)^2 = 4 R^2 (x^2 + y^2)``, a quartic in ``t``. It is found by sphere
  tracing the torus' exact signed distance ``sqrt((rho - R)^2 + z^2) - r`` (steps never
  overshoot because the distance is exact), started at the bounding sphere, then refined by
  Newton steps on the distance; rays must start outside the torus (cameras and shadow-ray
  origins do); a ray whose march does not converge within the step budget
  (only rays grazing the silhouette) counts as a miss.
* capsule: the points within ``radius`` of the segment from ``(0, 0, -length/2)`` to
  ``(0, 0, length/2)``: a cylinder side plus two hemispheres (their union's first entry is the
  nearest of the three entries, for rays starting outside).
"""

from __future__ import annotations

import torch

from san.data.demo.geometry import INF, T_MIN, _valid, cylinder_side, intersect_sphere

TORUS_STEPS = 96
TORUS_EPS = 1e-7  # metres: a sphere-tracing step this close to the surface is a hit


def torus_sdf(p: torch.Tensor, major: float, minor: float) -> torch.Tensor:
    rho = torch.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2)
    return torch.sqrt((rho - major) ** 2 + p[:, 2] ** 2) - minor


def intersect_torus(o: torch.Tensor, d: torch.Tensor, major: float, minor: float):
    """Nearest hit of a torus (see module docstring)."""
    n = o.shape[0]
    t_out = torch.full((n,), INF, dtype=o.dtype, device=o.device)
    bound = major + minor
    # bounding-sphere interval [t0, t1]
    b = (o * d).sum(-1)
    c = (o * o).sum(-1) - bound * bound
    disc = b * b - c
    cand = disc > 0
    if not bool(cand.any()):
        return t_out, torch.zeros(n, dtype=torch.long, device=o.device)
    idx = cand.nonzero()[:, 0]
    sq = torch.sqrt(disc[idx])
    t0 = (-b[idx] - sq).clamp_min(0.0)
    t1 = -b[idx] + sq
    oo, dd = o[idx], d[idx]
    t = t0.clone()
    alive = t1 > T_MIN
    hit = torch.zeros_like(alive)
    for _ in range(TORUS_STEPS):
        if not bool(alive.any()):
            break
        dist = torus_sdf(oo + t[:, None] * dd, major, minor)
        now_hit = alive & (dist < TORUS_EPS)
        hit |= now_hit
        t = torch.where(alive & ~now_hit, t + dist, t)
        alive = alive & ~now_hit & (t < t1)
    # Newton refinement on the signed distance along the ray (directional derivative = grad . d),
    # a step kept only where it brings the point closer to the surface
    for _ in range(2):
        p = oo + t[:, None] * dd
        f = torus_sdf(p, major, minor)
        slope = (normal_torus(p, torch.zeros_like(t, dtype=torch.long), major, minor) * dd).sum(-1)
        t_new = t - f / torch.where(slope.abs() > 1e-3, slope, torch.ones_like(slope))
        better = torus_sdf(oo + t_new[:, None] * dd, major, minor).abs() < f.abs()
        t = torch.where(hit & (slope.abs() > 1e-3) & better, t_new, t)
    t_out[idx] = _valid(t, hit)
    return t_out, torch.zeros(n, dtype=torch.long, device=o.device)


def normal_torus(p: torch.Tensor, part: torch.Tensor, major: float, minor: float) -> torch.Tensor:
    rho = torch.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2).clamp_min(1e-12)
    k = 1 - major / rho
    n = torch.stack([p[:, 0] * k, p[:, 1] * k, p[:, 2]], dim=-1)
    return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def intersect_capsule(o: torch.Tensor, d: torch.Tensor, radius: float, length: float):
    """Nearest hit of a capsule (see module docstring); ``part``: 0 side, 1 top cap, 2 bottom cap."""
    h = length / 2
    candidates = [cylinder_side(o, d, radius, -h, h)]
    for zc in (h, -h):
        shift = torch.zeros(3, dtype=o.dtype, device=o.device)
        shift[2] = zc
        candidates.append(intersect_sphere(o - shift, d, radius)[0])
    t, part = torch.stack(candidates).min(dim=0)
    return t, part


def normal_capsule(p: torch.Tensor, part: torch.Tensor, radius: float, length: float) -> torch.Tensor:
    h = length / 2
    axis = torch.zeros_like(p)
    axis[:, 2] = p[:, 2].clamp(-h, h)
    n = p - axis
    return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
