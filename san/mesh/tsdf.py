"""Truncated signed distance fusion of depth maps (``mesh.method: tsdf``), as nerfstudio's
``ns-export tsdf`` builds a scene mesh: render the NeRF's depth from the training cameras, fuse the
depth maps into a TSDF on the marching-cubes grid, and mesh its zero level.

Why: the density level set (``mesh.method: density``, :mod:`san.mesh.extract`) sits where the field
first reaches ``mesh.threshold``; on the demo's checkered floor that is a haze layer above the
light squares and a second layer inside the dark ones, which the NeRF renders as a thick
semi-transparent slab. The fused depth is the surface the renders put the colour on, averaged over
the views.

**Which depth.** Not the expected depth (nerfstudio's default): for a semi-transparent slab it lies
deep behind the front (on the dark squares of a demo test view a median 0.18 normalised units
below the floor; the opacity-0.3 depth: 0.002, measured).
:func:`opacity_depth` takes the distance where the accumulated opacity reaches
``mesh.tsdf_depth_opacity`` (0.3: the front of the slab; 0.5 would be the median depth).

**Fusion.** The TSDF is a function of points (:func:`tsdf_fn`), so
:func:`san.mesh.extract.marching_cubes_slabs` evaluates it slab by slab and chunk by chunk, exactly
as it evaluates a density: memory is one chunk of points times a few depth maps, the grid is never
held whole. For a point ``p`` and a view with camera centre ``c`` (Curless & Levoy 1996; unit
weights as in KinectFusion / Open3D's TSDF volumes):

* ``p`` is projected into the view; outside the image, behind the camera, or on a pixel of weight 0
  (its ray never reached the opacity level), the view says nothing;
* ``sdf = depth[pixel] - |p - c|`` (``depth`` is the distance along the pixel's ray, unit
  directions; the nearest pixel is used, no interpolation across depth edges): positive in front of
  the surface, negative behind it;
* views with ``sdf < -truncation`` say nothing (``p`` is hidden behind the surface they see); the
  others contribute ``min(sdf / truncation, 1)``, weighted by the pixel's weight;
* the TSDF is the weighted mean; a point no view says anything about is *unknown* (NaN), and
  marching cubes skips every cube with an unknown corner, so the back of the truncation band (seen
  from no view) makes no second surface.

:func:`tsdf_fn` returns ``-tsdf`` so that, as with a density, larger means inside and the winding of
:func:`~san.mesh.extract.marching_cubes_slabs` gives outward normals. Frames: everything is in the
NeRF's normalised world; forward-facing (NDC) models are not fused (the pipeline falls back to the
density, :func:`san.mesh.from_nerf.surface_method`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from san.cameras import Camera, HoldsCamera, project_points
from san.data.scene import Frame
from san.mesh.extract import view_distortion
from san.models.base import RadianceModel


@dataclass(frozen=True)
class DepthViews:
    """Depth maps with their cameras, all in one frame (the NeRF's normalised world).

    Attributes:
        depth: ``BxHxW`` distance from the camera centre along each pixel's ray (unit directions;
            world units), float32.
        weight: ``BxHxW`` confidence of each pixel (0: no observation), float32.
        c2w: ``Bx4x4`` OpenCV camera-to-world.
        K: ``Bx3x3`` intrinsics in pixels of the ``W x H`` depth maps.
        distortion: OpenCV coefficients per view (``None``: pinhole), as
            :attr:`san.data.scene.Frame.distortion`.
    """

    depth: torch.Tensor
    weight: torch.Tensor
    c2w: torch.Tensor
    K: torch.Tensor
    distortion: Sequence[dict[str, float] | None] | None = None

    def __post_init__(self):
        B = self.depth.shape[0]
        if self.depth.dim() != 3 or self.weight.shape != self.depth.shape:
            raise ValueError(f"DepthViews: depth {tuple(self.depth.shape)} and weight {tuple(self.weight.shape)}")
        if self.c2w.shape != (B, 4, 4) or self.K.shape != (B, 3, 3):
            raise ValueError(f"DepthViews: {B} depth maps, c2w {tuple(self.c2w.shape)}, K {tuple(self.K.shape)}")
        if self.distortion is not None and len(self.distortion) != B:
            raise ValueError(f"DepthViews: {B} depth maps, {len(self.distortion)} distortions")

    def __len__(self) -> int:
        return int(self.depth.shape[0])


def opacity_depth(
    weights: torch.Tensor, positions: torch.Tensor, origins: torch.Tensor, opacity: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance along each ray at which the accumulated opacity reaches ``opacity``.

    The expected depth (the weight-averaged distance) of a partly transparent surface lies behind
    it: a NeRF that spreads a dark, textureless patch over a thick semi-transparent layer renders its
    expected depth far below the surface. The depth where the opacity first reaches a fixed level
    (0.5: the median depth) stays on the front of the layer.

    Args:
        weights: ``NxS`` volume-rendering weights, samples ordered front to back.
        positions: ``NxSx3`` sample positions (world).
        origins: ``Nx3`` ray origins (world).
        opacity: the level, in ``(0, 1]``.

    Returns:
        ``(depth N, valid N bool)``: the distance from the origin, interpolated linearly between the
        two samples whose cumulative weights bracket ``opacity`` (the first sample: its own
        distance); ``valid`` is false (and ``depth`` the last sample's distance) where the ray's
        total opacity stays below ``opacity``.
    """
    if not 0.0 < opacity <= 1.0:
        raise ValueError(f"opacity_depth: opacity must be in (0, 1], got {opacity}")
    dist = (positions - origins[:, None, :]).norm(dim=-1)
    cum = weights.cumsum(-1)
    S = weights.shape[1]
    k = (cum < opacity).sum(-1).clamp(max=S - 1)[:, None]  # first sample reaching the level
    km = (k - 1).clamp(min=0)
    c_prev = torch.where(k > 0, cum.gather(1, km), torch.zeros_like(k, dtype=cum.dtype))
    w_k = weights.gather(1, k).clamp_min(1e-12)
    frac = ((opacity - c_prev) / w_k).clamp(0.0, 1.0)
    d_prev, d_k = dist.gather(1, km), dist.gather(1, k)
    depth = torch.where(k > 0, d_prev + frac * (d_k - d_prev), d_k)[:, 0]
    return depth, cum[:, -1] >= opacity


def render_depth_views(
    model: RadianceModel,
    cameras: Sequence[Camera | Frame],
    size: int,
    opacity: float = 0.3,
    chunk: int = 1024,
    device: torch.device | str = "cpu",
) -> DepthViews:
    """Render ``model``'s :func:`opacity_depth` from every camera, resized to longest side ``size``.

    Args:
        model: a :class:`san.models.base.RadianceModel` (``render_rays(RayBundle)`` gives
            ``weights NxS`` and ``positions NxSx3``), in eval mode, in the cameras' frame, on ``device``.
        cameras: unbatched :class:`~san.cameras.Camera` objects (pinhole) or
            :class:`~san.data.scene.Frame` objects (``camera``; rays cast through their
            ``distortion``, :func:`~san.mesh.extract.view_distortion`).
        size: longest side of the depth maps in pixels (intrinsics scaled with
            :meth:`~san.cameras.Camera.resized`).
        opacity: the opacity level of the depth (:func:`opacity_depth`); pixels that never reach
            it get weight 0.
        chunk: rays per ``render_rays`` call.
        device: the model's device: the rays are cast there and the maps are kept there.

    Returns:
        :class:`DepthViews` (weight 1 where the depth is valid, else 0).

    Raises:
        ValueError: no cameras.
    """
    depths, weights, c2ws, Ks, dists = [], [], [], [], []
    for frame in cameras:
        cam = frame.camera if isinstance(frame, HoldsCamera) else Camera.of(frame)
        dist = view_distortion(frame)
        cam = cam.resized(size)
        rays = cam.rays(device=device, distortion=dist)
        d_parts, v_parts = [], []
        for i in range(0, len(rays), chunk):
            sub = rays[i : i + chunk]
            out = model.render_rays(sub)
            d, v = opacity_depth(out.weights, out.positions, sub.origins, opacity)
            d_parts.append(d.float().to(device))
            v_parts.append(v.to(device))
        depth = torch.cat(d_parts).view(cam.height, cam.width)
        depths.append(depth)
        weights.append((torch.cat(v_parts).view(cam.height, cam.width) & torch.isfinite(depth)).float())
        c2ws.append(torch.as_tensor(np.asarray(cam.c2w), dtype=torch.float32, device=device))
        Ks.append(torch.as_tensor(np.asarray(cam.K), dtype=torch.float32, device=device))
        dists.append(dist)
    if not depths:
        raise ValueError("render_depth_views: no cameras")
    return DepthViews(torch.stack(depths), torch.stack(weights), torch.stack(c2ws), torch.stack(Ks), dists)


def tsdf_fn(views: DepthViews, truncation: float, view_chunk: int = 4):
    """The fused TSDF as a function of points (module docstring).

    Args:
        views: the depth maps (:class:`DepthViews`).
        truncation: truncation distance in world units (> 0), e.g. a few voxels.
        view_chunk: views projected at once (memory: about ``10 * view_chunk * P`` floats).

    Returns:
        ``points Px3 (world, the views' frame) -> P``: ``-tsdf`` in ``[-1, 1]`` (positive behind
        the fused surface, i.e. inside), NaN where no view observes the point. Computed in float32
        on the points' device.
    """
    if not truncation > 0:
        raise ValueError(f"tsdf_fn: truncation must be > 0, got {truncation}")
    B, H, W = views.depth.shape
    same_distortion = views.distortion is None or all(d == views.distortion[0] for d in views.distortion)
    step = max(1, int(view_chunk)) if same_distortion else 1
    groups = [(b, min(b + step, B)) for b in range(0, B, step)]

    def fn(points: torch.Tensor) -> torch.Tensor:
        p = points.float()
        dev = p.device
        num = torch.zeros(p.shape[0], dtype=torch.float32, device=dev)
        den = torch.zeros_like(num)
        for b0, b1 in groups:
            dist = None if views.distortion is None else views.distortion[b0]
            c2w, K = views.c2w[b0:b1].to(dev), views.K[b0:b1].to(dev)
            uv, z = project_points(p, c2w, K, dist)  # GxPx2, GxP
            col, row = torch.floor(uv[..., 0]).long(), torch.floor(uv[..., 1]).long()
            inside = (z > 0) & (col >= 0) & (col < W) & (row >= 0) & (row < H)
            flat = row.clamp(0, H - 1) * W + col.clamp(0, W - 1)
            flat = flat + torch.arange(b0, b1, device=dev)[:, None] * (H * W)
            depth = views.depth.to(dev).reshape(-1)[flat]
            weight = views.weight.to(dev).reshape(-1)[flat]
            sdf = depth - (p[None] - c2w[:, None, :3, 3]).norm(dim=-1)
            w = torch.where(inside & (sdf >= -truncation), weight, torch.zeros_like(weight))
            num += (w * torch.clamp(sdf / truncation, max=1.0).nan_to_num(0.0)).sum(0)
            den += w.sum(0)
        return torch.where(den > 0, -num / den.clamp_min(1e-12), torch.full_like(num, float("nan")))

    return fn
