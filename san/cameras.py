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
* **One camera type**, :class:`Camera` (``c2w``, ``K``, ``width``, ``height``), batched-first: one
  camera (``4x4``, ``3x3``, ints) or a batch (``Bx4x4``, ``Bx3x3``, ``B`` sizes) with ``len``,
  indexing, :meth:`Camera.stack` / :meth:`Camera.cat`, batched :meth:`Camera.rays` and
  :meth:`Camera.project`. The records that add data to a camera hold one as ``.camera`` and pass
  ``c2w, K, width, height`` through read-only: a loaded :class:`san.data.scene.Frame` (image, split,
  distortion), :class:`san.evaluation.protocol.EvalView` and :class:`san.benchmark.BenchmarkView`
  (index, name); :meth:`Camera.of` returns the camera of any of them. A renderer of one view takes
  one :class:`Camera` (``RadianceModel.render_camera(camera)``; :func:`single_camera` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch

DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")


class CameraError(ValueError):
    """A camera that breaks the convention (matrix shapes, image size)."""


class PinholeLike(Protocol):
    """A :class:`Camera` or a record that holds one as ``.camera`` (:class:`san.data.scene.Frame`,
    :class:`san.evaluation.protocol.EvalView`, :class:`san.benchmark.BenchmarkView`); those records
    also pass ``c2w, K, width, height`` through read-only. :meth:`Camera.of` returns the camera."""

    c2w: np.ndarray
    K: np.ndarray
    width: int
    height: int


def _size(value, batch: tuple[int, ...], name: str):
    """``width`` / ``height`` as an ``int`` (one camera) or an int64 ``B`` array (a batch)."""
    if not batch:
        if np.ndim(value) != 0:
            raise CameraError(f"camera: {name} of one camera must be a number, got shape {np.shape(value)}")
        return int(value)
    arr = np.broadcast_to(np.asarray(value), batch) if np.ndim(value) == 0 else np.asarray(value)
    if arr.shape != batch:
        raise CameraError(f"camera: {name} must be a number or have the batch shape {batch}, got {arr.shape}")
    out = arr.astype(np.int64)
    if not np.array_equal(out, arr):
        raise CameraError(f"camera: {name} must be whole pixels, got {arr}")
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Camera:
    """Pinhole cameras, batched-first like the field's models: one type for one camera or many.

    Attributes (``B`` cameras; a single camera is the unbatched case, with the batch axis absent):
        c2w: ``Bx4x4`` (one camera: ``4x4``) float64 camera-to-world, OpenCV camera (``+x`` right,
            ``+y`` down, ``+z`` forward); a ``...x3x4`` is completed with ``[0, 0, 0, 1]``.
        K: ``Bx3x3`` (``3x3``) float64 intrinsics ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels,
            pixel ``(0, 0)``'s centre at ``(0.5, 0.5)``, for an image ``width x height``.
        width, height: image size in pixels: an ``int`` for one camera, an int64 ``B`` array
            (read-only) for a batch (a number given for a batch is shared by every camera).

    Storage is numpy float64 (what ``cameras.json`` holds, exactly); :meth:`tensors` gives torch
    tensors on a device. Lens distortion is not part of it: a :class:`Camera` is an ideal pinhole
    (a :class:`san.data.scene.Frame` keeps its capture's distortion beside its camera).

    A batch behaves as a sequence: ``len(cams)``, ``cams[i]`` (one unbatched camera), ``cams[a:b]``
    / ``cams[[i, j]]`` / ``cams[mask]`` (a batch), ``for cam in cams`` (unbatched cameras);
    :meth:`stack` / :meth:`cat` build batches. ``len`` and iteration of an unbatched camera raise
    ``TypeError`` like a 0-d tensor.

    Raises :class:`CameraError` on other shapes, mismatched batch shapes or a non-positive size.
    """

    c2w: np.ndarray
    K: np.ndarray
    width: int | np.ndarray
    height: int | np.ndarray

    def __post_init__(self) -> None:
        c2w = np.asarray(self.c2w, dtype=np.float64)
        K = np.asarray(self.K, dtype=np.float64)
        if c2w.ndim in (2, 3) and c2w.shape[-2:] == (3, 4):
            bottom = np.broadcast_to(np.array([0.0, 0.0, 0.0, 1.0]), (*c2w.shape[:-2], 1, 4))
            c2w = np.concatenate([c2w, bottom], axis=-2)
        if c2w.ndim not in (2, 3) or c2w.shape[-2:] != (4, 4) or K.shape[-2:] != (3, 3):
            raise CameraError(f"camera: c2w must be 4x4 (or 3x4) and K 3x3, got {c2w.shape} and {K.shape}")
        batch = c2w.shape[:-2]
        if K.shape[:-2] != batch:
            raise CameraError(f"camera: c2w {c2w.shape} and K {K.shape} have different batch shapes")
        width, height = _size(self.width, batch, "width"), _size(self.height, batch, "height")
        if np.any(np.asarray(width) < 1) or np.any(np.asarray(height) < 1):
            raise CameraError(f"camera: image size {self.width}x{self.height} must be positive")
        object.__setattr__(self, "c2w", c2w)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "height", height)

    # ------------------------------------------------------------------------------ batch shape

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """``(B,)`` for a batch, ``()`` for one camera."""
        return self.c2w.shape[:-2]

    @property
    def batched(self) -> bool:
        return bool(self.batch_shape)

    def __len__(self) -> int:
        if not self.batched:
            raise TypeError("len() of an unbatched Camera (one camera); use Camera.stack([camera]) for a batch")
        return self.c2w.shape[0]

    def __bool__(self) -> bool:
        """One camera is true; a batch is true when it holds a camera (``len`` alone would raise)."""
        return not self.batched or len(self) > 0

    def __getitem__(self, index) -> Camera:
        """``cams[i]`` -> one unbatched camera; a slice, index list/array or boolean mask -> a batch."""
        if not self.batched:
            raise TypeError("indexing an unbatched Camera (one camera)")
        if isinstance(index, tuple):
            raise TypeError("a Camera batch has one axis; index it with one index")
        return Camera(self.c2w[index], self.K[index], self.width[index], self.height[index])

    def __iter__(self):
        """The cameras of a batch, unbatched, in order."""
        if not self.batched:
            raise TypeError("iteration over an unbatched Camera (one camera); use Camera.stack([camera]) for a batch")
        return (self[i] for i in range(len(self)))

    @classmethod
    def stack(cls, cameras: Sequence[Camera | PinholeLike]) -> Camera:
        """A ``B`` batch of ``B`` unbatched cameras (or records holding one), in order.

        Raises :class:`CameraError` for an empty sequence or a batched member (use :meth:`cat`)."""
        cams = [cls.of(c) for c in cameras]
        if not cams:
            raise CameraError("Camera.stack: no cameras")
        if any(c.batched for c in cams):
            raise CameraError("Camera.stack takes unbatched cameras; use Camera.cat for batches")
        return cls(
            np.stack([c.c2w for c in cams]),
            np.stack([c.K for c in cams]),
            np.array([c.width for c in cams]),
            np.array([c.height for c in cams]),
        )

    @classmethod
    def cat(cls, batches: Sequence[Camera]) -> Camera:
        """One batch of the cameras of several batches, in order (unbatched members count as one)."""
        parts = [c if c.batched else cls.stack([c]) for c in (cls.of(b) for b in batches)]
        if not parts:
            raise CameraError("Camera.cat: no cameras")
        return cls(
            np.concatenate([c.c2w for c in parts]),
            np.concatenate([c.K for c in parts]),
            np.concatenate([c.width for c in parts]),
            np.concatenate([c.height for c in parts]),
        )

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` shared by every camera of the batch.

        Raises :class:`CameraError` when the cameras of a batch have different sizes."""
        if not self.batched:
            return self.width, self.height
        if len(self) == 0 or (self.width != self.width[0]).any() or (self.height != self.height[0]).any():
            raise CameraError(f"camera batch: image sizes differ (or no cameras): {self.width}x{self.height}")
        return int(self.width[0]), int(self.height[0])

    # ------------------------------------------------------------------------------ conversion

    @classmethod
    def of(cls, camera: Camera | PinholeLike) -> Camera:
        """The :class:`Camera` of a camera (itself), of a record holding one as ``.camera`` (a
        :class:`san.data.scene.Frame`, an evaluation or benchmark view), or of anything with
        ``c2w, K, width, height``."""
        if isinstance(camera, Camera):
            return camera
        held = getattr(camera, "camera", None)
        if isinstance(held, Camera):
            return held
        return cls(camera.c2w, camera.K, camera.width, camera.height)

    def with_c2w(self, c2w) -> Camera:
        """The same intrinsics and size with other poses (same batch shape), e.g. in another frame."""
        return Camera(c2w, self.K, self.width, self.height)

    def resized(self, size: int) -> Camera:
        """The same cameras with their longest side ``size`` pixels (:func:`resize_longest_side`,
        per camera of a batch)."""
        if self.batched:
            return Camera.stack([c.resized(size) for c in self]) if len(self) else self
        K, w, h = resize_longest_side(self.K, self.width, self.height, size)
        return Camera(self.c2w, K, w, h)

    def tensors(self, device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """``(c2w Bx4x4, K Bx3x3)`` (one camera: ``4x4, 3x3``) as tensors of ``dtype`` on ``device``."""
        return (
            torch.as_tensor(self.c2w, dtype=dtype, device=device),
            torch.as_tensor(self.K, dtype=dtype, device=device),
        )

    def key(self) -> bytes:
        """Bytes identifying the camera(s) (a cache key)."""
        return self.c2w.tobytes() + self.K.tobytes() + np.array([self.width, self.height]).tobytes()

    # ------------------------------------------------------------------------------ geometry

    def rays(self, device=None, dtype=torch.float32, distortion: dict[str, float] | None = None) -> RayBundle:
        """Every pixel's ray: ``B*H*W`` rays, camera-major then row-major (reshape to ``BxHxWx3``;
        one camera: ``H*W``, as :func:`generate_rays`). A batch needs one shared size (:attr:`size`).
        ``distortion`` (OpenCV coefficients, shared) undistorts each pixel before casting."""
        c2w, K = self.tensors(device, dtype)
        width, height = self.size
        return generate_rays(c2w, K, width, height, distortion)

    def project(
        self, points: torch.Tensor, distortion: dict[str, float] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``Nx3`` world points into every camera: ``(pixels BxNx2 as (x, y), z BxN)`` (one camera:
        ``Nx2, N``), as :func:`project_points`, in ``points``' dtype and device."""
        c2w = torch.as_tensor(self.c2w, dtype=points.dtype, device=points.device)
        K = torch.as_tensor(self.K, dtype=points.dtype, device=points.device)
        return project_points(points, c2w, K, distortion)


def single_camera(camera: Camera, what: str) -> Camera:
    """``camera`` as one unbatched :class:`Camera`, for a function that renders one view (like
    nerfstudio's ``get_outputs_for_camera``): an unbatched camera as it is, a batch of one as its
    camera.

    Raises:
        TypeError: ``camera`` is not a :class:`Camera` (a record holding one: pass ``record.camera``).
        CameraError: a batch of zero or several cameras (``"{what} renders one camera, got a batch of B"``).
    """
    if not isinstance(camera, Camera):
        raise TypeError(
            f"{what} takes one san.cameras.Camera, got {type(camera).__name__} "
            "(a Frame / EvalView / BenchmarkView: pass its .camera, or Camera.of(record))"
        )
    if not camera.batched:
        return camera
    if len(camera) != 1:
        raise CameraError(f"{what} renders one camera, got a batch of {len(camera)}: index it (cameras[i])")
    return camera[0]


class HoldsCamera:
    """Read-only ``c2w, K, width, height`` of a record's ``camera`` (a :class:`Camera`), so that a
    record holding one camera can be used where the four fields are read."""

    @property
    def c2w(self) -> np.ndarray:
        """``4x4`` float64 camera-to-world (OpenCV) of :attr:`camera`."""
        return self.camera.c2w

    @property
    def K(self) -> np.ndarray:
        """``3x3`` float64 intrinsics in pixels of :attr:`camera`."""
        return self.camera.K

    @property
    def width(self) -> int:
        return self.camera.width

    @property
    def height(self) -> int:
        return self.camera.height

    def _check_camera(self, what: str) -> None:
        """Raise :class:`CameraError` unless :attr:`camera` is one unbatched :class:`Camera`."""
        if not isinstance(self.camera, Camera) or self.camera.batched:
            raise CameraError(f"{what}: camera must be one unbatched san.cameras.Camera, got {self.camera!r}")


def as_tensor(x, dtype=torch.float64) -> torch.Tensor:
    """``numpy`` / ``torch`` / nested lists -> CPU tensor of ``dtype``."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype)


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


def subpixel_grid(width: int, height: int, samples: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """``(H*W) x S^2 x 2`` sub-pixel coordinates ``(x, y)`` in pixels, ``S = samples``: the centres
    of an ``S x S`` sub-grid of every pixel (row-major pixels; within a pixel, row-major sub-samples).
    Averaging the colours of their rays is a box-filtered (supersampled) pixel; ``S = 1`` gives the
    pixel centres of :func:`pixel_grid`."""
    if samples < 1:
        raise ValueError(f"subpixel_grid: samples must be >= 1, got {samples}")
    g = (torch.arange(samples, device=device, dtype=dtype) + 0.5) / samples
    sy, sx = torch.meshgrid(g, g, indexing="ij")
    offsets = torch.stack([sx.reshape(-1), sy.reshape(-1)], dim=-1)
    corners = pixel_grid(width, height, device=device, dtype=dtype).reshape(-1, 1, 2) - 0.5
    return corners + offsets[None]


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
    """All ``H*W`` rays of one camera in row-major pixel order (reshape outputs to ``HxW``).

    With a batch, ``c2w`` ``Bx4x4`` and ``K`` ``Bx3x3`` (one shared ``width x height``): all
    ``B*H*W`` rays, camera-major then row-major (reshape to ``BxHxW``)."""
    grid = pixel_grid(width, height, device=c2w.device, dtype=c2w.dtype)
    if c2w.dim() == 2:
        return rays_from_pixels(grid, c2w, K, distortion)
    if K.dim() != 3 or K.shape[0] != c2w.shape[0]:
        raise CameraError(f"generate_rays: c2w {tuple(c2w.shape)} and K {tuple(K.shape)} batch shapes differ")
    # One camera per row of a B x (H*W) grid: rays_from_pixels broadcasts c2w Bx1x4x4 over the pixels.
    rays = rays_from_pixels(grid, c2w[:, None], K[:, None], distortion)
    return RayBundle(rays.origins.reshape(-1, 3), rays.directions.reshape(-1, 3))


def project_points(
    points: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, distortion: dict[str, float] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points into a camera (or every camera of a batch).

    Args:
        points: ``Nx3`` world points.
        c2w: ``4x4`` camera-to-world (or a batch ``Bx4x4``).
        K: ``3x3`` intrinsics (or ``Bx3x3``).

    Returns:
        ``(pixels Nx2 as (x, y), z N)`` where ``z`` is the depth along the camera's ``+z`` axis
        (negative behind the camera); for a batch ``BxNx2`` and ``BxN``.
    """
    w2c = torch.linalg.inv(c2w)
    if c2w.dim() == 2:
        cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    else:
        cam = points @ w2c[:, :3, :3].transpose(-1, -2) + w2c[:, None, :3, 3]
        K = K[:, None]
    z = cam[..., 2]
    safe_z = torch.where(z.abs() < 1e-9, torch.full_like(z, 1e-9), z)
    x, y = cam[..., 0] / safe_z, cam[..., 1] / safe_z
    if has_distortion(distortion):
        x, y = distort_normalized(x, y, distortion)
    u = x * K[..., 0, 0] + K[..., 0, 2]
    v = y * K[..., 1, 1] + K[..., 1, 2]
    return torch.stack([u, v], dim=-1), z


def ray_depth_to_z(depth: torch.Tensor, directions: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
    """Convert distance-along-ray depth (``N``) into camera ``z`` depth (``N``); with a batch,
    ``depth`` ``BxN``, ``directions`` ``BxNx3`` and ``c2w`` ``Bx4x4``."""
    if c2w.dim() == 2:
        return depth * (directions @ c2w[:3, 2])
    return depth * (directions @ c2w[:, :3, 2, None])[..., 0]


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
