"""Exact ray-primitive intersections (torch, float64, vectorised) for the demo scene.

Every ``intersect_*`` takes ray origins ``o`` and unit directions ``d`` (``Nx3``, in the
primitive's local frame; rotations keep them unit) and returns ``(t, part)``: ``t`` (``N``) is
the nearest hit distance ``> T_MIN`` along the ray (``inf`` for a miss) and ``part`` (``N``,
long) says which surface was hit (``0`` for primitives with one surface; box: the axis; cylinder:
``0`` side, ``1`` top cap, ``2`` bottom cap; cone: ``0`` side, ``1`` base). ``normal_*`` turn a
local hit point (``Nx3``) and its ``part`` into outward unit normals (``Nx3``).

Local frames (see :class:`san.data.demo.layout.DemoObject`): sphere and box centred at the
origin; cylinder and cone stand on ``z = 0`` with their axis along ``+z``.
"""

from __future__ import annotations

import torch

T_MIN = 1e-7
INF = float("inf")


def _nearest(candidates: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    t, part = torch.stack(candidates, dim=0).min(dim=0)
    return t, part


def _valid(t: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    return torch.where(ok & (t > T_MIN), t, torch.full_like(t, INF))


def _quadratic_roots(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor):
    """Roots of ``a t^2 + 2 b t + c = 0`` as ``(t0, t1, real)``; ``a ~ 0`` falls back to the
    linear root (returned twice)."""
    disc = b * b - a * c
    real = disc >= 0
    sq = torch.sqrt(disc.clamp_min(0))
    linear = a.abs() < 1e-12
    safe_a = torch.where(linear, torch.ones_like(a), a)
    safe_b = torch.where(b.abs() < 1e-300, torch.full_like(b, 1e-300), b)
    t0 = torch.where(linear, -c / (2 * safe_b), (-b - sq) / safe_a)
    t1 = torch.where(linear, -c / (2 * safe_b), (-b + sq) / safe_a)
    real = real | linear
    return torch.minimum(t0, t1), torch.maximum(t0, t1), real


def _nearest_in_slab(o, d, t0, t1, real, z_lo: float, z_hi: float) -> torch.Tensor:
    """The nearer of the valid roots ``t0``, ``t1`` (``N``) whose hit point has ``z_lo <= z <= z_hi``."""
    sides = []
    for t in (t0, t1):
        z = o[:, 2] + t * d[:, 2]
        sides.append(_valid(t, real & (z >= z_lo) & (z <= z_hi)))
    return torch.minimum(*sides)


def _disk(o: torch.Tensor, d: torch.Tensor, z: float, radius: float) -> torch.Tensor:
    """Hit distance (``N``, ``inf`` for a miss) of the disk ``x^2 + y^2 <= radius^2`` in the plane ``z``."""
    safe_dz = torch.where(d[:, 2].abs() < 1e-300, torch.full_like(d[:, 2], 1e-300), d[:, 2])
    t = (z - o[:, 2]) / safe_dz
    x, y = o[:, 0] + t * d[:, 0], o[:, 1] + t * d[:, 1]
    return _valid(t, x * x + y * y <= radius * radius)


def cylinder_side(o: torch.Tensor, d: torch.Tensor, radius: float, z_lo: float, z_hi: float) -> torch.Tensor:
    """Hit distance (``N``, ``inf`` for a miss) of the open tube ``x^2 + y^2 = radius^2``,
    ``z_lo <= z <= z_hi`` (no caps); rays parallel to the axis miss it."""
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1]
    c = o[:, 0] ** 2 + o[:, 1] ** 2 - radius * radius
    t0, t1, real = _quadratic_roots(a, b, c)
    return _nearest_in_slab(o, d, t0, t1, real & (a > 1e-18), z_lo, z_hi)


def intersect_sphere(o: torch.Tensor, d: torch.Tensor, radius: float):
    """Sphere of ``radius`` at the origin (also used from inside, for the dome)."""
    b = (o * d).sum(-1)
    c = (o * o).sum(-1) - radius * radius
    t0, t1, real = _quadratic_roots(torch.ones_like(b), b, c)
    t0, t1 = _valid(t0, real), _valid(t1, real)
    t = torch.where(torch.isfinite(t0), t0, t1)
    return t, torch.zeros_like(t, dtype=torch.long)


def normal_sphere(p: torch.Tensor, part: torch.Tensor, radius: float) -> torch.Tensor:
    return p / radius


def intersect_box(o: torch.Tensor, d: torch.Tensor, extents) -> tuple[torch.Tensor, torch.Tensor]:
    """Axis-aligned box of full ``extents`` (x, y, z) centred at the origin (slab method)."""
    h = torch.as_tensor(extents, dtype=o.dtype, device=o.device) / 2
    tiny = torch.full_like(d, 1e-300)
    safe_d = torch.where(d.abs() < 1e-300, torch.where(d < 0, -tiny, tiny), d)
    t_lo, t_hi = (-h - o) / safe_d, (h - o) / safe_d
    t_near, t_far = torch.minimum(t_lo, t_hi), torch.maximum(t_lo, t_hi)
    enter, enter_axis = t_near.max(dim=-1)
    leave, leave_axis = t_far.min(dim=-1)
    hit = leave >= torch.clamp_min(enter, T_MIN)
    from_outside = enter > T_MIN
    t = _valid(torch.where(from_outside, enter, leave), hit)
    part = torch.where(from_outside, enter_axis, leave_axis)
    return t, part


def normal_box(p: torch.Tensor, part: torch.Tensor, extents) -> torch.Tensor:
    n = torch.zeros_like(p)
    sign = torch.sign(p.gather(-1, part[:, None]))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return n.scatter(-1, part[:, None], sign)


def intersect_cylinder(o: torch.Tensor, d: torch.Tensor, radius: float, height: float):
    """Closed cylinder: side ``x^2 + y^2 = r^2`` for ``0 <= z <= height`` plus both caps."""
    side = cylinder_side(o, d, radius, 0.0, height)
    return _nearest([side, _disk(o, d, height, radius), _disk(o, d, 0.0, radius)])


def normal_cylinder(p: torch.Tensor, part: torch.Tensor, radius: float, height: float) -> torch.Tensor:
    side = torch.stack([p[:, 0] / radius, p[:, 1] / radius, torch.zeros_like(p[:, 0])], dim=-1)
    side = side / side.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    up = torch.zeros_like(p)
    up[:, 2] = 1.0
    n = torch.where((part == 0)[:, None], side, up)
    return torch.where((part == 2)[:, None], -up, n)


def intersect_cone(o: torch.Tensor, d: torch.Tensor, radius: float, height: float):
    """Closed cone: base disk of ``radius`` at ``z = 0``, apex at ``z = height``; side
    ``x^2 + y^2 = k^2 (height - z)^2`` with ``k = radius / height``, ``0 <= z <= height``."""
    k2 = (radius / height) ** 2
    w = height - o[:, 2]
    a = d[:, 0] ** 2 + d[:, 1] ** 2 - k2 * d[:, 2] ** 2
    b = o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1] + k2 * w * d[:, 2]
    c = o[:, 0] ** 2 + o[:, 1] ** 2 - k2 * w * w
    side = _nearest_in_slab(o, d, *_quadratic_roots(a, b, c), 0.0, height)
    return _nearest([side, _disk(o, d, 0.0, radius)])


def normal_cone(p: torch.Tensor, part: torch.Tensor, radius: float, height: float) -> torch.Tensor:
    rho = torch.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2).clamp_min(1e-12)
    side = torch.stack([p[:, 0] / rho, p[:, 1] / rho, torch.full_like(rho, radius / height)], dim=-1)
    side = side / side.norm(dim=-1, keepdim=True)
    down = torch.zeros_like(p)
    down[:, 2] = -1.0
    return torch.where((part == 0)[:, None], side, down)


def intersect_ground(o: torch.Tensor, d: torch.Tensor, radius: float):
    """The ground disk ``z = 0``, ``x^2 + y^2 <= radius^2`` (world frame), either side."""
    t = _disk(o, d, 0.0, radius)
    return t, torch.zeros_like(t, dtype=torch.long)


INTERSECT = {"sphere": intersect_sphere, "box": intersect_box, "cylinder": intersect_cylinder, "cone": intersect_cone}
NORMAL = {"sphere": normal_sphere, "box": normal_box, "cylinder": normal_cylinder, "cone": normal_cone}


def shape_args(shape: str, params: dict) -> tuple:
    """Positional size arguments of ``INTERSECT[shape]`` / ``NORMAL[shape]`` from ``params``."""
    if shape == "sphere":
        return (params["radius"],)
    if shape == "box":
        return (tuple(params["extents"]),)
    return (params["radius"], params["height"])
