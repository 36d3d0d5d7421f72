"""LLFF captures: ``poses_bounds.npy`` plus an ``images`` / ``images_N`` folder.

``poses_bounds.npy`` is ``Nx17`` float: per image a ``3x5`` matrix ``[R | t | hwf]`` flattened
row-major, then ``near, far`` depth bounds (capture units, along the camera's viewing axis).

* ``R``'s columns are LLFF's camera axes ``(down, right, back)`` in world coordinates; ``t`` is the
  camera centre. :func:`llff_to_opencv` reorders them to OpenCV's ``(right, down, forward)``.
* ``hwf`` is ``(H, W, focal)`` of the *full-resolution* photos. Intrinsics are rescaled to the image
  actually on disk (``images_8`` of a ``4032x3024`` capture is ``504x378``); the principal point is
  the image centre, as LLFF assumes.
* Rows are in the order of the image files sorted by name, so the ``i``-th sorted file of the image
  folder is the ``i``-th row. A different number of files and rows is an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from san.cameras import Camera, intrinsics_matrix, zero_distortion
from san.data.images import image_size, list_images, rescale_to_image, resolve_image_folder
from san.data.scene import Frame, SceneError

POSES_BOUNDS = "poses_bounds.npy"

# OpenCV axes (right, down, forward) as signed LLFF columns (down, right, back).
_LLFF_TO_OPENCV = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


@dataclass(frozen=True)
class LlffCapture:
    """An LLFF scene in its own world frame.

    Attributes:
        frames: one :class:`Frame` per image, sorted by name, OpenCV ``c2w`` in capture units,
            intrinsics for the image on disk, split ``"train"`` (splits are assigned later).
        bounds: ``Nx2`` ``(near, far)`` per frame, capture units.
        pose_file: the ``poses_bounds.npy`` read.
        image_folder: the image folder used.
    """

    frames: tuple[Frame, ...]
    bounds: np.ndarray
    pose_file: Path
    image_folder: Path


def llff_to_opencv(pose_3x4: np.ndarray) -> np.ndarray:
    """``...x3x4`` LLFF ``[R | t]`` (columns down, right, back) -> ``...x4x4`` OpenCV camera-to-world."""
    pose_3x4 = np.asarray(pose_3x4, dtype=np.float64)
    c2w = np.zeros(pose_3x4.shape[:-2] + (4, 4))
    c2w[..., :3, :3] = pose_3x4[..., :3, :3] @ _LLFF_TO_OPENCV
    c2w[..., :3, 3] = pose_3x4[..., :3, 3]
    c2w[..., 3, 3] = 1.0
    return c2w


def opencv_to_llff(c2w: np.ndarray) -> np.ndarray:
    """``...x4x4`` OpenCV camera-to-world -> ``...x3x4`` LLFF ``[R | t]`` (inverse of :func:`llff_to_opencv`)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    out = np.zeros(c2w.shape[:-2] + (3, 4))
    out[..., :3, :3] = c2w[..., :3, :3] @ _LLFF_TO_OPENCV.T
    out[..., :3, 3] = c2w[..., :3, 3]
    return out


def write_poses_bounds(
    path: str | os.PathLike, c2w: np.ndarray, hwf: tuple[float, float, float], bounds: np.ndarray
) -> None:
    """Write ``poses_bounds.npy`` for ``Nx4x4`` OpenCV ``c2w``, one full-resolution ``(H, W, focal)``
    and ``Nx2`` bounds (used by tests and demo scenes)."""
    poses = opencv_to_llff(c2w)
    n = poses.shape[0]
    hwf_col = np.broadcast_to(np.asarray(hwf, dtype=np.float64).reshape(1, 3, 1), (n, 3, 1))
    rows = np.concatenate([poses, hwf_col], axis=-1).reshape(n, 15)
    np.save(path, np.concatenate([rows, np.asarray(bounds, dtype=np.float64).reshape(n, 2)], axis=1))


def read_poses_bounds(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``poses_bounds.npy`` -> ``(c2w Nx4x4 OpenCV, hwf Nx3, bounds Nx2)``, with shape checks."""
    path = Path(path)
    try:
        arr = np.load(path)
    except FileNotFoundError as e:
        raise SceneError(f"{path}: not found") from e
    except (OSError, ValueError) as e:
        raise SceneError(f"{path}: cannot read ({type(e).__name__}: {e})") from e
    if arr.ndim != 2 or arr.shape[1] != 17:
        raise SceneError(f"{path}: expected an Nx17 array (3x5 pose + near, far per image), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise SceneError(f"{path}: no poses (empty array)")
    arr = arr.astype(np.float64)
    poses = arr[:, :15].reshape(-1, 3, 5)
    return llff_to_opencv(poses[:, :, :4]), poses[:, :, 4], arr[:, 15:17]


def load_llff(scene_dir: str | os.PathLike, image_folder: str | None = None) -> LlffCapture:
    """Read an LLFF scene folder (see the module docstring); every image's header is checked.

    Args:
        scene_dir: folder holding ``poses_bounds.npy``.
        image_folder: ``"images"``, ``"images_8"``, ...; default per
            :func:`san.data.images.resolve_image_folder`.

    Raises:
        SceneError: naming the file for a bad ``poses_bounds.npy``, a count mismatch, missing or
            unreadable images, non-finite or non-positive ``hwf`` / bounds.
    """
    scene_dir = Path(scene_dir)
    pose_file = scene_dir / POSES_BOUNDS
    c2w, hwf, bounds = read_poses_bounds(pose_file)
    folder = resolve_image_folder(scene_dir, image_folder)
    files = list_images(folder)
    if len(files) != len(c2w):
        raise SceneError(f"{pose_file}: {len(c2w)} poses but {len(files)} images in {folder}")
    frames = []
    for i, (path, pose, (h0, w0, focal), (near, far)) in enumerate(zip(files, c2w, hwf, bounds)):
        if not np.all(np.isfinite([h0, w0, focal])) or min(h0, w0, focal) <= 0:
            raise SceneError(f"{pose_file}: row {i} ({path.name}) has invalid hwf {(h0, w0, focal)}")
        if not (np.isfinite(near) and np.isfinite(far) and 0 < near < far):
            raise SceneError(f"{pose_file}: row {i} ({path.name}) has invalid bounds near={near}, far={far}")
        w, h = image_size(path)
        K = rescale_to_image(intrinsics_matrix(focal, focal, w0 / 2.0, h0 / 2.0), (w0, h0), (w, h), path)
        frames.append(Frame(os.path.abspath(path), Camera(pose, K, w, h), zero_distortion()))
    return LlffCapture(tuple(frames), bounds, pose_file, folder)
