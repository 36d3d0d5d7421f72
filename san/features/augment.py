"""Camera augmentation for the feature cache: new views between training views.

A new camera interpolates two distinct random training poses with a random ratio (rotation by
quaternion slerp, position by linear interpolation) and gets a square image with a random vertical
field of view. All cameras follow :mod:`san.cameras` (OpenCV ``c2w``, pixel centres at ``+0.5``).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from san.cameras import Camera, PinholeLike, intrinsics_matrix


def camera_at_size(camera: PinholeLike, size: int) -> Camera:
    """The same camera with its longest side resized to ``size`` pixels (:meth:`san.cameras.Camera.resized`)."""
    return Camera.of(camera).resized(size)


def interpolate_pose(c2w_a: np.ndarray, c2w_b: np.ndarray, ratio: float) -> np.ndarray:
    """Pose ``ratio`` of the way from ``c2w_a`` (``0``) to ``c2w_b`` (``1``).

    Args:
        c2w_a, c2w_b: ``4x4`` (or ``3x4``) camera-to-world with orthonormal rotations.
        ratio: interpolation ratio in ``[0, 1]``.

    Returns:
        ``4x4`` float64 camera-to-world: rotation slerped along the shorter arc, position lerped.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"interpolate_pose: ratio must be in [0, 1], got {ratio}")
    a, b = np.asarray(c2w_a, dtype=np.float64), np.asarray(c2w_b, dtype=np.float64)
    rotations = Rotation.from_matrix(np.stack([a[:3, :3], b[:3, :3]]))
    out = np.eye(4)
    out[:3, :3] = Slerp([0.0, 1.0], rotations)([float(ratio)]).as_matrix()[0]
    out[:3, 3] = (1.0 - ratio) * a[:3, 3] + ratio * b[:3, 3]
    return out


def square_camera_intrinsics(size: int, fov_y_deg: float) -> np.ndarray:
    """``3x3`` intrinsics of a ``size x size`` image with vertical field of view ``fov_y_deg``."""
    f = 0.5 * size / math.tan(math.radians(fov_y_deg) / 2)
    return intrinsics_matrix(f, f, size / 2, size / 2)


def sample_augmented_cameras(
    train_c2w: np.ndarray,
    n: int,
    rng: np.random.Generator,
    fov_range_deg: Sequence[float] = (50.0, 70.0),
    size: int = 512,
) -> list[Camera]:
    """``n`` new cameras between random pairs of training cameras.

    Args:
        train_c2w: ``Nx4x4`` training camera-to-world matrices (``N >= 1``; with ``N = 1`` every new
            camera shares that pose and only the field of view varies).
        n: number of cameras.
        rng: seeded ``numpy.random.Generator`` (the only source of randomness).
        fov_range_deg: ``(low, high)`` vertical field of view in degrees, drawn uniformly.
        size: side of the square image in pixels.

    Returns:
        ``n`` :class:`~san.cameras.Camera` with ``width = height = size``.
    """
    poses = np.asarray(train_c2w, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[0] < 1 or poses.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f"train_c2w must be Nx4x4 with N >= 1, got shape {poses.shape}")
    lo, hi = (float(v) for v in fov_range_deg)
    if not 0 < lo <= hi < 180:
        raise ValueError(f"fov_range_deg must satisfy 0 < low <= high < 180, got {tuple(fov_range_deg)}")
    cameras = []
    for _ in range(n):
        if poses.shape[0] >= 2:
            i, j = rng.choice(poses.shape[0], size=2, replace=False)
        else:
            i = j = 0
        c2w = interpolate_pose(poses[i], poses[j], float(rng.uniform(0.0, 1.0)))
        K = square_camera_intrinsics(size, float(rng.uniform(lo, hi)))
        cameras.append(Camera(c2w, K, int(size), int(size)))
    return cameras
