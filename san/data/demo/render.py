"""Exact analytic ray casting of the demo scene, for its views or for any camera.

Shading: ``rgb = albedo * (ambient + (1 - ambient) * max(n . l, 0) * lit)`` for ground and
objects under one directional light (``lit`` = 0 where a shadow ray towards the light hits an
object, when ``shadows``); the sky dome is emissive (``rgb = sky colour``). Colours are stored as
they are (no gamma), clipped to ``[0, 1]``.
"""

from __future__ import annotations

import numpy as np
import torch

from san.cameras import generate_rays, rays_from_pixels, subpixel_grid
from san.data.config import DemoSceneConfig
from san.data.demo.geometry import INTERSECT, NORMAL, intersect_ground, intersect_sphere, shape_args
from san.data.demo.layout import BACKGROUND_ID, GROUND_ID, demo_objects, light_direction
from san.data.demo.textures import ValueNoise, antialias, mix, pattern, sky

DTYPE = torch.float64
GROUND_COLORS = ((0.62, 0.58, 0.5), (0.36, 0.35, 0.33))
SHADOW_OFFSET = 1e-6


def _to_local(obj, o: torch.Tensor, d: torch.Tensor):
    R = torch.as_tensor(obj.rotation, dtype=DTYPE)
    pos = torch.as_tensor(obj.position, dtype=DTYPE)
    return (o - pos) @ R, d @ R  # R^T (x - pos) for row vectors


def trace_rays(origins: torch.Tensor, directions: torch.Tensor, config: DemoSceneConfig):
    """Nearest hit of every ray.

    Args:
        origins, directions: ``Nx3`` world rays (unit directions), any float dtype.

    Returns:
        ``(t N, ids N long, part N long)``: distance along the ray to the nearest surface, its
        mask id (0 dome, 1 ground, 2.. objects) and the surface part (see ``geometry``). Rays
        from inside the dome always hit something; a ray from outside that misses the dome gets
        ``t = inf`` and id 0.
    """
    o, d = origins.to(DTYPE), directions.to(DTYPE)
    t, _ = intersect_sphere(o, d, config.dome_radius)
    ids = torch.full_like(t, BACKGROUND_ID, dtype=torch.long)
    part = torch.zeros_like(ids)
    tg, _ = intersect_ground(o, d, config.dome_radius)
    closer = tg < t
    t, ids = torch.where(closer, tg, t), torch.where(closer, torch.full_like(ids, GROUND_ID), ids)
    for obj in demo_objects(config):
        ol, dl = _to_local(obj, o, d)
        to, po = INTERSECT[obj.shape](ol, dl, *shape_args(obj.shape, obj.params))
        closer = to < t
        t = torch.where(closer, to, t)
        ids = torch.where(closer, torch.full_like(ids, obj.id), ids)
        part = torch.where(closer, po, part)
    return t, ids, part


def _occluded(points: torch.Tensor, light: torch.Tensor, config: DemoSceneConfig) -> torch.Tensor:
    """``N`` bool: does a ray from ``points`` towards the light hit an object?"""
    d = light.expand_as(points)
    hit = torch.zeros(len(points), dtype=torch.bool)
    for obj in demo_objects(config):
        ol, dl = _to_local(obj, points, d)
        to, _ = INTERSECT[obj.shape](ol, dl, *shape_args(obj.shape, obj.params))
        hit |= torch.isfinite(to)
    return hit


def shade_rays(
    origins: torch.Tensor,
    directions: torch.Tensor,
    config: DemoSceneConfig,
    pixel_angle: float,
    noise: ValueNoise | None = None,
):
    """Trace and shade rays.

    Args:
        origins, directions: ``Nx3`` world rays (unit directions).
        pixel_angle: angular size of one pixel (radians, ``~1 / fx``), for texture anti-aliasing.
        noise: the texture noise (built from ``config.seed`` when omitted).

    Returns:
        ``(rgb Nx3, t N, ids N)`` float64 / float64 / long tensors.
    """
    noise = ValueNoise(config.seed) if noise is None else noise
    o, d = origins.to(DTYPE), directions.to(DTYPE)
    t, ids, part = trace_rays(o, d, config)
    p = o + t.clamp_max(config.dome_radius * 4)[:, None] * d
    rgb = torch.zeros_like(o)
    normal = torch.zeros_like(o)
    light = torch.as_tensor(light_direction(config), dtype=DTYPE)

    sel = ids == BACKGROUND_ID
    if sel.any():
        dirs = p[sel] / p[sel].norm(dim=-1, keepdim=True).clamp_min(1e-12)
        rgb[sel] = sky(dirs, noise)

    sel = ids == GROUND_ID
    if sel.any():
        ps = p[sel]
        normal[sel] = torch.tensor([0.0, 0.0, 1.0], dtype=DTYPE) * torch.sign(-d[sel, 2:3])
        value, period = pattern("ground_checker", ps, part[sel], {"size": config.ground_checker})
        footprint = t[sel] * pixel_angle / d[sel, 2].abs().clamp_min(0.02)
        albedo = mix(*GROUND_COLORS, antialias(value, period, footprint))
        rgb[sel] = albedo * (1 + 0.12 * noise.fbm(ps * 2.0))[:, None]

    for obj in demo_objects(config):
        sel = ids == obj.id
        if not sel.any():
            continue
        pl, dl = _to_local(obj, p[sel], d[sel])
        args = shape_args(obj.shape, obj.params)
        nl = NORMAL[obj.shape](pl, part[sel], *args)
        R = torch.as_tensor(obj.rotation, dtype=DTYPE)
        normal[sel] = nl @ R.T
        value, period = pattern(obj.pattern, pl, part[sel], obj.params)
        footprint = t[sel] * pixel_angle / (nl * dl).sum(-1).abs().clamp_min(0.05)
        albedo = mix(obj.color, obj.color2, antialias(value, period, footprint))
        rgb[sel] = albedo * (1 + 0.1 * noise.fbm(pl * 5.0 + 11.0 * obj.id))[:, None]

    surf = ids != BACKGROUND_ID
    if surf.any():
        lambert = (normal[surf] @ light).clamp_min(0)
        if config.shadows:
            lit_candidates = lambert > 0
            pts = p[surf][lit_candidates] + SHADOW_OFFSET * normal[surf][lit_candidates]
            shadowed = torch.zeros_like(lambert, dtype=torch.bool)
            shadowed[lit_candidates] = _occluded(pts, light, config)
            lambert = torch.where(shadowed, torch.zeros_like(lambert), lambert)
        shade = config.ambient + (1 - config.ambient) * lambert
        rgb[surf] = rgb[surf] * shade[:, None]
    return rgb.clamp(0, 1), t, ids


def render_demo_view(c2w, K, width: int, height: int, config: DemoSceneConfig = DemoSceneConfig()) -> dict:
    """Ground-truth rendering of the demo scene from any pinhole camera.

    Args:
        c2w: ``4x4`` OpenCV camera-to-world (numpy or torch), world frame of :mod:`layout`.
        K: ``3x3`` intrinsics (pixel centres at ``+0.5``).
        width, height: image size in pixels.
        config: scene config (textures' seed, light, shadows, ``supersample``).

    Returns:
        ``{"rgb": HxWx3 float32 in [0, 1], "depth": HxW float32 distance along the unit ray of the
        pixel centre, "ids": HxW uint8 mask ids of the pixel centre}`` (numpy). RGB averages
        ``supersample x supersample`` sub-pixel rays; depth and ids are exact at pixel centres.
    """
    c2w = torch.as_tensor(np.asarray(c2w), dtype=DTYPE)
    K = torch.as_tensor(np.asarray(K), dtype=DTYPE)
    pixel_angle = 1.0 / float(max(K[0, 0], K[1, 1]))
    centre = generate_rays(c2w, K, width, height)
    s = config.supersample
    if s == 1:
        rgb, t, ids = shade_rays(centre.origins, centre.directions, config, pixel_angle)
    else:
        t, ids, _ = trace_rays(centre.origins, centre.directions, config)
        sub = rays_from_pixels(subpixel_grid(width, height, s, dtype=DTYPE), c2w, K)
        sub_rgb, _, _ = shade_rays(sub.origins, sub.directions, config, pixel_angle / s)
        rgb = sub_rgb.reshape(height * width, s * s, 3).mean(dim=1)
    return {
        "rgb": rgb.reshape(height, width, 3).float().numpy(),
        "depth": t.reshape(height, width).float().numpy(),
        "ids": ids.reshape(height, width).to(torch.uint8).numpy(),
    }
