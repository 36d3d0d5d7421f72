"""Exact ray casting of procedural scenes (the demo renderer's shading model, generalised).

Shading as :mod:`san.data.demo.render`: ``rgb = albedo * (ambient + (1 - ambient) * max(n.l, 0)
* lit)`` with hard shadows from one directional light; the sky dome is emissive. Intersections
are analytic (sphere, box, cylinder, cone, capsule) or sphere-traced on the exact distance
(torus), float64; each primitive only tests the rays that hit its bounding sphere closer than
the current nearest hit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from san.cameras import generate_rays, rays_from_pixels, subpixel_grid
from san.data.demo.geometry import INTERSECT as DEMO_INTERSECT
from san.data.demo.geometry import NORMAL as DEMO_NORMAL
from san.data.demo.geometry import intersect_ground, intersect_sphere
from san.data.demo.layout import BACKGROUND_ID, GROUND_ID
from san.data.demo.textures import ValueNoise, antialias, mix, smoothstep
from san.data.procedural.geometry import intersect_capsule, intersect_torus, normal_capsule, normal_torus
from san.data.procedural.scene import Primitive, ProceduralScene

DTYPE = torch.float64
SHADOW_OFFSET = 1e-6

INTERSECT = {**DEMO_INTERSECT, "torus": intersect_torus, "capsule": intersect_capsule}
NORMAL = {**DEMO_NORMAL, "torus": normal_torus, "capsule": normal_capsule}


def _args(p: Primitive) -> tuple:
    q = p.params
    if p.shape == "sphere":
        return (q["radius"],)
    if p.shape == "box":
        return (tuple(q["extents"]),)
    if p.shape == "torus":
        return (q["major"], q["minor"])
    if p.shape == "capsule":
        return (q["radius"], q["length"])
    return (q["radius"], q["height"])


def _to_local(p: Primitive, o: torch.Tensor, d: torch.Tensor):
    R = torch.as_tensor(p.rotation, dtype=DTYPE)
    pos = torch.as_tensor(p.position, dtype=DTYPE)
    return (o - pos) @ R, d @ R


def _sphere_entry(o: torch.Tensor, d: torch.Tensor, centre: np.ndarray, radius: float) -> torch.Tensor:
    """Distance to the bounding sphere's entry (0 from inside, ``inf`` on a miss)."""
    oc = o - torch.as_tensor(centre, dtype=DTYPE)
    b = (oc * d).sum(-1)
    c = (oc * oc).sum(-1) - radius * radius
    disc = b * b - c
    t_far = -b + torch.sqrt(disc.clamp_min(0))
    entry = (-b - torch.sqrt(disc.clamp_min(0))).clamp_min(0)
    return torch.where((disc > 0) & (t_far > 0), entry, torch.full_like(b, math.inf))


def trace_rays(o: torch.Tensor, d: torch.Tensor, scene: ProceduralScene):
    """Nearest hit of every ray: ``(t N, ids N long, prim N long, part N long)``; ``prim`` indexes
    the flattened list of primitives (``-1`` for dome and ground)."""
    env = scene.env
    t, _ = intersect_sphere(o, d, env.dome_radius)
    ids = torch.full_like(t, BACKGROUND_ID, dtype=torch.long)
    prim = torch.full_like(ids, -1)
    part = torch.zeros_like(ids)
    tg, _ = intersect_ground(o, d, env.dome_radius)
    closer = tg < t
    t, ids = torch.where(closer, tg, t), torch.where(closer, torch.full_like(ids, GROUND_ID), ids)
    k = 0
    for obj in scene.objects:
        for p in obj.parts:
            centre, radius = p.bounding_sphere()
            sel = (_sphere_entry(o, d, centre, radius) < t).nonzero()[:, 0]
            if len(sel):
                ol, dl = _to_local(p, o[sel], d[sel])
                ts, ps = INTERSECT[p.shape](ol, dl, *_args(p))
                closer = ts < t[sel]
                s = sel[closer]
                t[s], ids[s], prim[s], part[s] = ts[closer], obj.id, k, ps[closer]
            k += 1
    return t, ids, prim, part


def _occluded(points: torch.Tensor, light: torch.Tensor, scene: ProceduralScene) -> torch.Tensor:
    d = light.expand_as(points)
    hit = torch.zeros(len(points), dtype=torch.bool)
    for obj in scene.objects:
        for p in obj.parts:
            centre, radius = p.bounding_sphere()
            sel = (torch.isfinite(_sphere_entry(points, d, centre, radius)) & ~hit).nonzero()[:, 0]
            if len(sel):
                ol, dl = _to_local(p, points[sel], d[sel])
                ts, _ = INTERSECT[p.shape](ol, dl, *_args(p))
                hit[sel] |= torch.isfinite(ts)
    return hit


def _parity(x: torch.Tensor) -> torch.Tensor:
    return torch.remainder(torch.floor(x), 2.0)


def object_pattern(obj, p: torch.Tensor, noise: ValueNoise) -> tuple[torch.Tensor, torch.Tensor]:
    """Texture value in ``[0, 1]`` and its period (metres) at local points ``p`` (``Nx3``)."""
    q = obj.pattern_params
    period = torch.full_like(p[:, 0], q["period"])
    axis = torch.as_tensor(q["axis"], dtype=p.dtype)
    if obj.pattern == "solid":
        return torch.zeros_like(p[:, 0]), torch.full_like(p[:, 0], math.inf)
    if obj.pattern == "stripes":
        return _parity(p @ axis / (q["period"] / 2)), period
    if obj.pattern == "checker":
        s = q["period"] / 2
        return torch.remainder(torch.floor(p / s).sum(-1), 2.0), period
    if obj.pattern == "noise":
        v = smoothstep(-0.25, 0.25, noise.fbm(p * q["frequency"] + 3.0 * obj.id))
        return v, torch.full_like(p[:, 0], math.inf)
    if obj.pattern == "two_tone":
        return (p @ axis > q["offset"]).to(p.dtype), torch.full_like(p[:, 0], math.inf)
    raise ValueError(f"unknown procedural pattern {obj.pattern!r}")


def _ground(ps: torch.Tensor, env, noise: ValueNoise, footprint: torch.Tensor) -> torch.Tensor:
    s = env.ground_period
    if env.ground_pattern == "checker":
        value, period = _parity(ps[:, 0] / s) + _parity(ps[:, 1] / s), s
        value = torch.remainder(value, 2.0)
    elif env.ground_pattern == "stripes":
        value, period = _parity((ps[:, 0] + 0.37 * ps[:, 1]) / s), s
    elif env.ground_pattern == "noise":
        value, period = smoothstep(-0.3, 0.3, noise.fbm(ps * (1.5 / s) + 41.0)), math.inf
    else:  # solid
        value, period = torch.zeros_like(ps[:, 0]), math.inf
    albedo = mix(*env.ground_colors, antialias(value, torch.full_like(value, period), footprint))
    return albedo * (1 + 0.15 * noise.fbm(ps * 2.0))[:, None]


def _sky(dirs: torch.Tensor, env, noise: ValueNoise) -> torch.Tensor:
    elev = torch.asin(dirs[:, 2].clamp(-1, 1))
    s = (elev / (math.pi / 2)).clamp(0, 1) ** 0.6
    rgb = mix(env.sky_horizon, env.sky_zenith, s)
    clouds = smoothstep(0.05, 0.45, noise.fbm(dirs * 3.0 + 31.0, octaves=4)) * smoothstep(0.04, 0.2, elev) * env.clouds
    rgb = rgb + (torch.tensor([0.96, 0.96, 0.96], dtype=rgb.dtype) - rgb) * (0.85 * clouds)[:, None]
    if env.hills:
        az = torch.atan2(dirs[:, 1], dirs[:, 0])
        ring = torch.stack([torch.cos(az), torch.sin(az), torch.zeros_like(az)], dim=-1)
        top = env.hill_height * (0.4 + 0.6 * (0.5 + 0.5 * noise.fbm(ring * 2.5 + 57.0, octaves=4)))
        hills = mix(*env.hill_colors, 0.5 + 0.5 * noise.fbm(dirs * 20.0 + 5.0, octaves=2))
        rgb = torch.where((elev < top)[:, None], hills, rgb)
    return rgb


def shade_rays(o: torch.Tensor, d: torch.Tensor, scene: ProceduralScene, pixel_angle: float, noise: ValueNoise):
    """Trace and shade world rays (``Nx3`` float64) -> ``(rgb Nx3, t N, ids N)``."""
    env = scene.env
    t, ids, prim, part = trace_rays(o, d, scene)
    p = o + t.clamp_max(env.dome_radius * 4)[:, None] * d
    rgb = torch.zeros_like(o)
    normal = torch.zeros_like(o)
    sel = ids == BACKGROUND_ID
    if sel.any():
        rgb[sel] = _sky(p[sel] / p[sel].norm(dim=-1, keepdim=True).clamp_min(1e-12), env, noise)
    sel = ids == GROUND_ID
    if sel.any():
        normal[sel] = torch.tensor([0.0, 0.0, 1.0], dtype=DTYPE) * torch.sign(-d[sel, 2:3])
        footprint = t[sel] * pixel_angle / d[sel, 2].abs().clamp_min(0.02)
        rgb[sel] = _ground(p[sel], env, noise, footprint)
    k = 0
    for obj in scene.objects:
        for pr in obj.parts:
            sel = prim == k
            k += 1
            if not sel.any():
                continue
            pl, dl = _to_local(pr, p[sel], d[sel])
            nl = NORMAL[pr.shape](pl, part[sel], *_args(pr))
            normal[sel] = nl @ torch.as_tensor(pr.rotation, dtype=DTYPE).T
            value, period = object_pattern(obj, pl, noise)
            footprint = t[sel] * pixel_angle / (nl * dl).sum(-1).abs().clamp_min(0.05)
            albedo = mix(obj.color, obj.color2, antialias(value, period, footprint))
            rgb[sel] = albedo * (1 + 0.1 * noise.fbm(pl * 5.0 + 11.0 * obj.id))[:, None]
    surf = ids != BACKGROUND_ID
    if surf.any():
        light = torch.as_tensor(env.light_direction, dtype=DTYPE)
        lambert = (normal[surf] @ light).clamp_min(0)
        lit = lambert > 0
        pts = p[surf][lit] + SHADOW_OFFSET * normal[surf][lit]
        shadowed = torch.zeros_like(lambert, dtype=torch.bool)
        shadowed[lit] = _occluded(pts, light, scene)
        lambert = torch.where(shadowed, torch.zeros_like(lambert), lambert)
        rgb[surf] = rgb[surf] * (env.ambient + (1 - env.ambient) * lambert)[:, None]
    return rgb.clamp(0, 1), t, ids


def render_procedural_view(scene: ProceduralScene, view: int, supersample: int = 2) -> dict:
    """Ground truth of view ``view`` of ``scene``.

    Returns:
        ``{"rgb": HxWx3 uint8, "depth": HxW float32 distance along the pixel-centre ray (finite),
        "ids": HxW uint8 mask ids (0 sky, 1 ground, 2.. objects) at pixel centres}``. RGB averages
        ``supersample^2`` sub-pixel rays.
    """
    noise = ValueNoise(scene.texture_seed)
    w, h = scene.width, scene.height
    c2w = torch.as_tensor(scene.c2w[view], dtype=DTYPE)
    K = torch.as_tensor(scene.K[view], dtype=DTYPE)
    pixel_angle = 1.0 / float(K[0, 0])
    centre = generate_rays(c2w, K, w, h)
    t, ids, _, _ = trace_rays(centre.origins, centre.directions, scene)
    s = supersample
    if s == 1:
        rgb, _, _ = shade_rays(centre.origins, centre.directions, scene, pixel_angle, noise)
    else:
        sub = rays_from_pixels(subpixel_grid(w, h, s, dtype=DTYPE), c2w, K)
        sub_rgb, _, _ = shade_rays(
            sub.origins.reshape(-1, 3), sub.directions.reshape(-1, 3), scene, pixel_angle / s, noise
        )
        rgb = sub_rgb.reshape(h * w, s * s, 3).mean(dim=1)
    return {
        "rgb": np.round(rgb.reshape(h, w, 3).numpy() * 255).astype(np.uint8),
        "depth": t.reshape(h, w).float().numpy(),
        "ids": ids.reshape(h, w).to(torch.uint8).numpy(),
    }
