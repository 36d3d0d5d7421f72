"""The one camera convention used everywhere inside ``san``.

Conventions (read this once; every module follows it):

* **Camera frame: OpenCV / COLMAP.** ``+x`` right, ``+y`` down, ``+z`` forward (the viewing
  direction). Loaders convert every input convention (LLFF's ``(down, right, back)`` columns,
  Blender/nerfstudio's OpenGL ``(right, up, back)``) into this one.
* **Poses are camera-to-world** ``c2w`` matrices, ``4x4`` (or ``Bx4x4``), rotation part orthonormal.
* **Pixels:** ``(x, y)`` in pixels, ``x`` along the width, ``y`` along the height, pixel ``(0, 0)``'s
  centre at ``(0.5, 0.5)``. Images are ``HxWx3`` (numpy / loading) or ``Bx3xHxW`` (models).
* **Intrinsics** ``K`` is ``3x3`` ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in that pixel convention.
* **Distortion** is kept as a dict with OpenCV's radial-tangential coefficients
  ``k1, k2, k3, k4, p1, p2`` (absent ones are zero). It is handled *in ray generation*: a pixel's
  ray goes through the undistorted normalised coordinate of that pixel, so the captured images are
  used as they are (no resampling).
* **Rays** have unit-length directions; rendered ``depth`` is the distance along the ray
  (``t``), so ``origin + depth * direction`` is the surface point. :func:`ray_depth_to_z` converts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")


def zero_distortion() -> dict[str, float]:
    """A distortion dict with every coefficient zero (a pinhole camera)."""
    return {k: 0.0 for k in DISTORTION_KEYS}


def has_distortion(distortion: dict[str, float] | None) -> bool:
    return distortion is not None and any(abs(float(distortion.get(k, 0.0))) > 0 for k in DISTORTION_KEYS)


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """``3x3`` intrinsics in the pixel convention above."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def scale_intrinsics(K: np.ndarray | torch.Tensor, sx: float, sy: float | None = None):
    """Intrinsics for an image resized by ``(sx, sy)`` (``new_size = old_size * s``).

    With pixel centres at ``+0.5`` a resize maps pixel edges to pixel edges, so ``fx, cx`` scale
    by ``sx`` and ``fy, cy`` by ``sy`` exactly.
    """
    sy = sx if sy is None else sy
    K2 = K.clone() if isinstance(K, torch.Tensor) else np.array(K, dtype=np.float64, copy=True)
    K2[..., 0, :] = K2[..., 0, :] * sx
    K2[..., 1, :] = K2[..., 1, :] * sy
    return K2


def resize_longest_side(K, width: int, height: int, size: int):
    """Intrinsics and image size for an image resized so that its longest side is ``size`` pixels.

    The aspect ratio is kept up to rounding of each side to whole pixels; ``K`` is scaled by the
    exact per-axis ratios (:func:`scale_intrinsics`), so rays through pixel edges are unchanged.

    Returns:
        ``(K', width', height')`` with ``K'`` a float64 numpy ``3x3`` (or a tensor for a tensor ``K``).
    """
    s = size / max(width, height)
    w, h = max(1, int(round(width * s))), max(1, int(round(height * s)))
    return (
        scale_intrinsics(K if isinstance(K, torch.Tensor) else np.asarray(K, dtype=np.float64), w / width, h / height),
        w,
        h,
    )


def _distort(x: torch.Tensor, y: torch.Tensor, d: dict[str, float]):
    """OpenCV radial-tangential distortion of normalised coordinates (up to ``k4`` radial terms)."""
    k1, k2, k3, k4, p1, p2 = (float(d.get(k, 0.0)) for k in DISTORTION_KEYS)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * k4)))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd


def distort_normalized(x: torch.Tensor, y: torch.Tensor, distortion: dict[str, float]):
    """Apply the distortion to normalised image coordinates ``(x, y) = ((u - cx) / fx, (v - cy) / fy)``."""
    return _distort(x, y, distortion)


def undistort_normalized(
    xd: torch.Tensor, yd: torch.Tensor, distortion: dict[str, float], iterations: int = 20
) -> tuple[torch.Tensor, torch.Tensor]:
    """Invert :func:`distort_normalized` with Newton iterations (exact to float precision for the
    mild distortion of real captures)."""
    x, y = xd.clone(), yd.clone()
    k1, k2, k3, k4, p1, p2 = (float(distortion.get(k, 0.0)) for k in DISTORTION_KEYS)
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * k4)))
        dradial = k1 + r2 * (2 * k2 + r2 * (3 * k3 + r2 * 4 * k4))  # d radial / d r2
        fx = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) - xd
        fy = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y - yd
        # Jacobian of the distortion map.
        j11 = radial + 2 * x * x * dradial + 2 * p1 * y + 6 * p2 * x
        j12 = 2 * x * y * dradial + 2 * p1 * x + 2 * p2 * y
        j21 = 2 * x * y * dradial + 2 * p1 * x + 2 * p2 * y
        j22 = radial + 2 * y * y * dradial + 6 * p1 * y + 2 * p2 * x
        det = j11 * j22 - j12 * j21
        det = torch.where(det.abs() < 1e-12, torch.full_like(det, 1e-12), det)
        x = x - (j22 * fx - j12 * fy) / det
        y = y - (-j21 * fx + j11 * fy) / det
    return x, y


@dataclass(frozen=True)
class RayBundle:
    """A flat batch of rays.

    Attributes:
        origins: ``Nx3`` ray origins in world coordinates.
        directions: ``Nx3`` unit ray directions in world coordinates.
    """

    origins: torch.Tensor
    directions: torch.Tensor

    def __len__(self) -> int:
        return self.origins.shape[0]

    def __getitem__(self, index) -> "RayBundle":
        return RayBundle(self.origins[index], self.directions[index])

    def to(self, device) -> "RayBundle":
        return RayBundle(self.origins.to(device), self.directions.to(device))


def pixel_grid(width: int, height: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """``HxWx2`` pixel-centre coordinates ``(x, y)`` in pixels (centres at ``+0.5``)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype) + 0.5,
        torch.arange(width, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1)


def rays_from_pixels(
    pixels: torch.Tensor,
    c2w: torch.Tensor,
    K: torch.Tensor,
    distortion: dict[str, float] | None = None,
) -> RayBundle:
    """Rays through pixel coordinates.

    Args:
        pixels: ``...x2`` pixel coordinates ``(x, y)`` (use ``+0.5`` for pixel centres).
        c2w: ``4x4`` (or ``3x4``) camera-to-world, OpenCV convention, broadcastable to ``...x4x4``.
        K: ``3x3`` intrinsics, broadcastable to ``...x3x3``.
        distortion: optional OpenCV coefficients; the pixel is undistorted before casting.

    Returns:
        A :class:`RayBundle` flattened to ``Nx3`` where ``N`` is the number of pixels.
    """
    pixels = pixels.reshape(-1, 2).to(c2w.dtype)
    K = K.to(c2w.dtype)
    x = (pixels[:, 0] - K[..., 0, 2]) / K[..., 0, 0]
    y = (pixels[:, 1] - K[..., 1, 2]) / K[..., 1, 1]
    if has_distortion(distortion):
        x, y = undistort_normalized(x, y, distortion)
    dirs_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)
    R = c2w[..., :3, :3]
    dirs = (R @ dirs_cam.unsqueeze(-1)).squeeze(-1) if R.dim() > 2 else dirs_cam @ R.T
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    origins = c2w[..., :3, 3].expand_as(dirs)
    return RayBundle(origins.contiguous(), dirs.contiguous())


def generate_rays(
    c2w: torch.Tensor,
    K: torch.Tensor,
    width: int,
    height: int,
    distortion: dict[str, float] | None = None,
) -> RayBundle:
    """All ``H*W`` rays of one camera in row-major pixel order (reshape outputs to ``HxW``)."""
    grid = pixel_grid(width, height, device=c2w.device, dtype=c2w.dtype)
    return rays_from_pixels(grid, c2w, K, distortion)


def project_points(
    points: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, distortion: dict[str, float] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points into a camera.

    Args:
        points: ``Nx3`` world points.
        c2w: ``4x4`` camera-to-world.
        K: ``3x3`` intrinsics.

    Returns:
        ``(pixels Nx2 as (x, y), z N)`` where ``z`` is the depth along the camera's ``+z`` axis
        (negative behind the camera).
    """
    w2c = torch.linalg.inv(c2w)
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    safe_z = torch.where(z.abs() < 1e-9, torch.full_like(z, 1e-9), z)
    x, y = cam[:, 0] / safe_z, cam[:, 1] / safe_z
    if has_distortion(distortion):
        x, y = distort_normalized(x, y, distortion)
    u = x * K[0, 0] + K[0, 2]
    v = y * K[1, 1] + K[1, 2]
    return torch.stack([u, v], dim=-1), z


def ray_depth_to_z(depth: torch.Tensor, directions: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
    """Convert distance-along-ray depth (``N``) into camera ``z`` depth (``N``)."""
    forward = c2w[:3, 2]
    return depth * (directions @ forward)


def orthonormality_error(R: np.ndarray) -> float:
    """``max |R^T R - I|`` of a ``3x3`` (or ``Bx3x3``) rotation."""
    R = np.asarray(R, dtype=np.float64)
    eye = np.eye(3)
    return float(np.abs(np.swapaxes(R, -1, -2) @ R - eye).max())


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """``4x4`` OpenCV camera-to-world looking from ``eye`` at ``target`` with world ``up``
    appearing upwards in the image (image ``-y``)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)  # right = forward x up  (OpenCV: y down)
    if np.linalg.norm(x) < 1e-9:
        x = np.cross(z, np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w
