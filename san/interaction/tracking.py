"""3D click tracking: lift pixels to world points with a rendered depth, re-project them into
other cameras and decide, per camera, whether each point is still a usable prompt.

Conventions are those of :mod:`san.cameras`: pixels ``(x, y)`` with pixel ``(0, 0)``'s centre at
``(0.5, 0.5)``; rendered ``depth`` is the distance along the unit ray, so a pixel's surface point is
``origin + depth * direction``. The rendered depth *at* a fractional pixel position
(:func:`sample_depth`) is the depth of the pixel that contains it, corrected to first order by the
depth gradient, estimated edge-aware: per axis, the smaller of the forward and backward
differences, zero where they disagree in sign (the *minmod* limiter). On a smooth, slanted
surface this removes the error of reading the depth half a pixel away; at a silhouette the
difference across the jump is never used, so no surface is invented between an object and what
is behind it (plain bilinear interpolation would).

Visibility (the occlusion test). A world point ``X`` re-projected to pixel ``p`` of a camera with
centre ``o`` is

* ``behind``      when its camera ``z`` is ``<= 0``,
* ``off_screen``  when ``p`` is outside ``[0, width) x [0, height)``,
* ``occluded``    when ``| |X - o| - depth[p] | > tol(depth[p])``,
* ``visible``     otherwise,

with ``tol(d) = relative * d + absolute`` (:class:`DepthTolerance`; defaults ``1.5 %`` of the depth
plus ``0.005`` scene units, about 2 % at the unit camera distance of ``san``'s normalised frame).
The relative term absorbs the depth noise of a NeRF, which grows with distance; the absolute term
covers close-up surfaces. Both sides are tested: a surface nearer than the point occludes it, and a
rendered surface farther than the point means the point floats in free space in this camera (a bad
lift), which is not a usable prompt either.

Choosing the tolerance (measured with ``scripts/eval_click_tracking.py``, exact demo depth, 160
clicks x 48 views): a looser test keeps points hidden just behind an object's own horizon, a
tighter one drops visible points where the depth is read next to a silhouette. ``tracked`` = kept
and on the right object where visible, ``dropped`` = dropped where occluded:
``3 % + 0.01``: 0.961 / 0.910; ``2 % + 0.005``: 0.960 / 0.946; ``1.5 % + 0.005``: 0.959 / 0.969;
``1 % + 0.005``: 0.954 / 0.983. Without the minmod correction the tight settings lose 2-3 points
of ``tracked``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import torch

from san.cameras import project_points, rays_from_pixels


class PointStatus(IntEnum):
    """Why a re-projected point is (not) a prompt in a camera."""

    VISIBLE = 0
    OFF_SCREEN = 1
    BEHIND = 2
    OCCLUDED = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class DepthTolerance:
    """Depth-test tolerance ``tol(d) = relative * d + absolute`` (``d`` = rendered depth, scene units).

    Defaults: ``relative=0.015`` (1.5 % of the depth), ``absolute=0.005`` (module docstring).
    """

    relative: float = 0.015
    absolute: float = 0.005

    def __post_init__(self) -> None:
        if self.relative < 0 or self.absolute < 0 or (self.relative == 0 and self.absolute == 0):
            raise ValueError(
                f"DepthTolerance: relative={self.relative}, absolute={self.absolute}; both must be >= 0 and not both 0"
            )

    def __call__(self, depth: torch.Tensor) -> torch.Tensor:
        return self.relative * depth + self.absolute


@dataclass(frozen=True)
class Reprojection:
    """Points re-projected into one camera.

    Attributes:
        pixels: ``Nx2`` re-projected ``(x, y)`` in pixels (meaningless where ``status`` is ``BEHIND``).
        status: ``N`` :class:`PointStatus` codes (``int64``).
        distance: ``N`` distance from the camera centre to each point.
        rendered_depth: ``N`` rendered depth where each point lands (:func:`sample_depth`;
            ``nan`` where the point is behind the camera or off-screen).
    """

    pixels: torch.Tensor
    status: torch.Tensor
    distance: torch.Tensor
    rendered_depth: torch.Tensor

    @property
    def visible(self) -> torch.Tensor:
        """``N`` bool: the point is a prompt in this camera."""
        return self.status == PointStatus.VISIBLE


def as_tensor(x, dtype=torch.float64) -> torch.Tensor:
    """``numpy`` / ``torch`` / nested lists -> CPU tensor of ``dtype``."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def pixels_inside(pixels: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """``N`` bool: ``(x, y)`` lies in ``[0, width) x [0, height)``."""
    x, y = pixels[:, 0], pixels[:, 1]
    return (x >= 0) & (x < width) & (y >= 0) & (y < height) & torch.isfinite(x) & torch.isfinite(y)


def pixel_indices(pixels: torch.Tensor, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Column / row of the pixel containing each ``(x, y)`` (clamped to the image)."""
    ix = torch.nan_to_num(pixels[:, 0]).floor().long().clamp(0, width - 1)
    iy = torch.nan_to_num(pixels[:, 1]).floor().long().clamp(0, height - 1)
    return ix, iy


def sample_depth(depth: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Rendered depth at fractional ``(x, y)`` positions (``Nx2``, inside the ``HxW`` image): the
    containing pixel's depth plus the minmod-limited gradient times the offset from its centre."""
    height, width = depth.shape
    ix, iy = pixel_indices(pixels, width, height)
    d = depth[iy, ix]

    def minmod(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        g = torch.where(a.abs() < b.abs(), a, b)
        ok = (a * b > 0) & torch.isfinite(g)
        return torch.where(ok, g, torch.zeros_like(g))

    gx = minmod(depth[iy, (ix + 1).clamp(max=width - 1)] - d, d - depth[iy, (ix - 1).clamp(min=0)])
    gy = minmod(depth[(iy + 1).clamp(max=height - 1), ix] - d, d - depth[(iy - 1).clamp(min=0), ix])
    dx = torch.nan_to_num(pixels[:, 0]) - (ix.to(pixels.dtype) + 0.5)
    dy = torch.nan_to_num(pixels[:, 1]) - (iy.to(pixels.dtype) + 0.5)
    return d + gx * dx + gy * dy


def lift_pixels(
    pixels,
    depth,
    c2w,
    K,
    distortion: dict[str, float] | None = None,
) -> torch.Tensor:
    """World points of pixels: ``origin + depth * direction``.

    Args:
        pixels: ``Nx2`` ``(x, y)`` in pixels (fractional allowed; the ray goes through the exact
            position, the depth is :func:`sample_depth` there).
        depth: ``HxW`` rendered depth (distance along the ray).
        c2w: ``4x4`` camera-to-world. K: ``3x3`` intrinsics. distortion: optional OpenCV coefficients.

    Returns:
        ``Nx3`` float64 world points.

    Raises:
        ValueError: a pixel outside the image, or a depth that is not a positive finite number there.
    """
    pixels = as_tensor(pixels).reshape(-1, 2)
    depth = as_tensor(depth)
    if depth.dim() != 2:
        raise ValueError(f"lift_pixels: depth must be HxW, got shape {tuple(depth.shape)}")
    height, width = depth.shape
    inside = pixels_inside(pixels, width, height)
    if not bool(inside.all()):
        bad = pixels[~inside][0].tolist()
        raise ValueError(
            f"pixel (x, y) = ({bad[0]:g}, {bad[1]:g}) is outside the {width}x{height} image "
            f"(x must be in [0, {width}), y in [0, {height}))"
        )
    d = sample_depth(depth, pixels)
    ok = torch.isfinite(d) & (d > 0)
    if not bool(ok.all()):
        i = int((~ok).nonzero()[0])
        raise ValueError(
            f"pixel ({pixels[i, 0]:g}, {pixels[i, 1]:g}) has rendered depth {float(d[i])}: no surface to lift the click to"
        )
    rays = rays_from_pixels(pixels, as_tensor(c2w), as_tensor(K), distortion)
    return rays.origins + d[:, None] * rays.directions


def reproject_points(
    points,
    c2w,
    K,
    depth,
    tolerance: DepthTolerance = DepthTolerance(),
    distortion: dict[str, float] | None = None,
) -> Reprojection:
    """Re-project world points into a camera and classify them (see the module docstring).

    Args:
        points: ``Nx3`` world points.
        c2w: ``4x4`` camera-to-world. K: ``3x3`` intrinsics.
        depth: ``HxW`` depth rendered in this camera (distance along the ray); gives the image size.
        tolerance: the depth-test tolerance.
        distortion: optional OpenCV coefficients of this camera.
    """
    points = as_tensor(points).reshape(-1, 3)
    depth = as_tensor(depth)
    height, width = depth.shape
    c2w_t = as_tensor(c2w)
    n = points.shape[0]
    if n == 0:
        empty = torch.zeros(0, dtype=torch.float64)
        return Reprojection(torch.zeros(0, 2, dtype=torch.float64), torch.zeros(0, dtype=torch.int64), empty, empty)
    pixels, z = project_points(points, c2w_t, as_tensor(K), distortion)
    distance = (points - c2w_t[:3, 3]).norm(dim=-1)
    status = torch.full((n,), int(PointStatus.VISIBLE), dtype=torch.int64)
    behind = z <= 1e-9
    off = ~behind & ~pixels_inside(pixels, width, height)
    rendered = sample_depth(depth, pixels)
    rendered = torch.where(behind | off, torch.full_like(rendered, float("nan")), rendered)
    on = ~behind & ~off
    occluded = on & ~((distance - rendered).abs() <= tolerance(rendered))  # nan / inf depth -> occluded
    status[occluded] = int(PointStatus.OCCLUDED)
    status[off] = int(PointStatus.OFF_SCREEN)
    status[behind] = int(PointStatus.BEHIND)
    return Reprojection(pixels, status, distance, rendered)
