"""Any supported capture -> a validated, normalised :class:`san.data.scene.Scene`.

:func:`prepare_scene` runs, in this order (all checks happen before anything is returned or written):

1. **Format** (``format="auto"``), first match wins: ``poses_bounds.npy`` -> ``llff``;
   ``transforms.json`` / ``transforms_train.json`` -> ``blender`` when it gives ``camera_angle_x``
   only, else ``nerfstudio``; ``sparse/0`` or ``colmap_sparse/0`` -> ``colmap``. A scene sheet can
   force any of ``llff, colmap, blender, nerfstudio``.
2. **Loading** (:mod:`~san.data.llff`, :mod:`~san.data.colmap`, :mod:`~san.data.transforms_json`):
   OpenCV camera-to-world in the capture's frame, intrinsics rescaled to the images on disk, every
   image's header read.
3. **Validation** (:func:`validate_frames`): finite poses with orthonormal, right-handed rotations
   (``max |R^T R - I| <= 1e-3``), positive focal lengths, finite distortion; errors name the pose file
   and the frame's image.
4. **Kind** (unless given): ``blender`` / ``nerfstudio`` -> ``unbounded``. ``llff`` / ``colmap`` ->
   ``forward_facing`` when every camera looks within ``forward_facing_max_angle`` degrees of the mean
   viewing direction, else ``unbounded`` (LLFF captures are forward-facing by construction, but
   Mip-NeRF 360 also ships a ``poses_bounds.npy``, so the data decides).
5. **Normalisation** (``docs/architecture.md``):

   * ``forward_facing``: the mean camera (mean forward axis, mean down axis, orthogonalised) is
     rotated onto the world axes (looks along ``+z``, image-down along ``+y``), the mean camera
     centre moves to the origin, and everything is scaled by ``1 / (0.75 * min near)``. ``near``
     and ``far`` are the scaled smallest near / largest far bound. Bounds come from
     ``poses_bounds.npy`` (LLFF) or, for COLMAP, from the depths of the sparse points that project
     into each image (0.1 / 99.9 percentiles). Other formats have no bounds: forcing them
     ``forward_facing`` is an error.
   * ``unbounded``: the origin is the least-squares point nearest to all optical axes (the mean
     camera centre when the axes are near-parallel), world up ``+z`` is the average camera up
     (OpenCV ``-y`` column) rotated by the smallest rotation, and the scale puts the farthest camera
     centre at distance 1. ``near = unbounded_near`` and ``far = unbounded_far`` (a large value: the
     scene contraction of unbounded samplers maps it to the contracted space's edge).

   The similarity is stored as :class:`~san.data.scene.Normalization`, so outputs map back.
6. **Split**: Blender uses its own files (``transforms_train.json`` -> train,
   ``transforms_test.json`` -> test). Otherwise frames are sorted by image name and indices
   ``0, test_every, 2 * test_every, ...`` are ``"test"``. Every scene needs held-out views
   (``train_nerf`` reports test PSNR on them, evaluation uses them): ``test_every`` is at least 1,
   and a Blender capture without test frames (no ``transforms_test.json``, or none of its images on
   disk) falls back to the every-``test_every`` split of its train frames, with a
   :class:`~san.data.scene.CaptureWarning`.
7. **Images decoded**: every image is fully decoded once (:func:`san.data.images.verify_image`),
   so a truncated photo fails here and not after hours of training.

``Scene.source`` records ``path``, ``format``, ``pose_file``, ``skipped_frames`` and ``background``:
the colour that RGBA images are composited on. Everything that decodes the scene's images calls
``san.data.images.load_image(frame.image, background=scene.source["background"])``.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from san.cameras import DISTORTION_KEYS, Camera, orthonormality_error
from san.data import colmap, llff, transforms_json
from san.data.config import PreparePosesConfig
from san.data.images import verify_image
from san.data.scene import SCENE_KINDS, CaptureWarning, Frame, Normalization, Scene, SceneError

FORMATS = ("llff", "colmap", "blender", "nerfstudio")
ORTHONORMAL_TOLERANCE = 1e-3
NEAR_MARGIN = 0.75  # forward-facing scale = 1 / (NEAR_MARGIN * min near), as LLFF does
POINT_DEPTH_PERCENTILES = (0.1, 99.9)  # COLMAP near / far bounds from sparse-point depths
_PARALLEL_AXES_CONDITION = 1e6  # above this, optical axes count as parallel (no common focus)


# --------------------------------------------------------------------------------------- detection


def detect_format(scene_dir: str | os.PathLike) -> str:
    """The format of a scene folder (see the module docstring); a clear error when none matches."""
    scene_dir = Path(scene_dir)
    if not scene_dir.is_dir():
        raise SceneError(f"{scene_dir}: scene folder not found")
    if (scene_dir / llff.POSES_BOUNDS).is_file():
        return "llff"
    if transforms_json.transforms_files(scene_dir):
        return transforms_json.detect_flavour(scene_dir)
    if colmap.find_sparse_dir(scene_dir) is not None:
        return "colmap"
    raise SceneError(
        f"{scene_dir}: cannot detect the scene format (expected {llff.POSES_BOUNDS}, "
        f"{transforms_json.SINGLE_FILE}, {transforms_json.SPLIT_FILES['train']}, "
        f"or a COLMAP model in {' or '.join(colmap.SPARSE_DIRS)})"
    )


# --------------------------------------------------------------------------------------- validation


def validate_frames(frames: tuple[Frame, ...] | list[Frame], pose_files: list[Path] | tuple[Path, ...]) -> None:
    """Check every frame's pose, intrinsics and distortion; the error names the pose file and image.

    Raises:
        SceneError: no frames; a non-finite or non-``4x4`` pose; a rotation that is not orthonormal
            (``> ORTHONORMAL_TOLERANCE``) or is a reflection; non-positive focal length or size;
            non-finite distortion.
    """
    if not frames:
        raise SceneError(f"{pose_files[0] if pose_files else 'scene'}: no frames")
    for frame, source in zip(frames, pose_files):
        where = f"{source}: frame {Path(frame.image).name}"
        c2w = np.asarray(frame.c2w, dtype=np.float64)
        if c2w.shape != (4, 4):
            raise SceneError(f"{where}: pose has shape {c2w.shape}, expected 4x4")
        if not np.all(np.isfinite(c2w)):
            raise SceneError(f"{where}: pose contains NaN or infinity")
        if not np.allclose(c2w[3], [0.0, 0.0, 0.0, 1.0], atol=ORTHONORMAL_TOLERANCE):
            raise SceneError(f"{where}: pose's last row is {c2w[3].tolist()}, expected [0, 0, 0, 1]")
        err = orthonormality_error(c2w[:3, :3])
        if err > ORTHONORMAL_TOLERANCE:
            raise SceneError(
                f"{where}: rotation is not orthonormal (max |R^T R - I| = {err:.3g} > {ORTHONORMAL_TOLERANCE})"
            )
        if np.linalg.det(c2w[:3, :3]) < 0:
            raise SceneError(f"{where}: rotation is a reflection (determinant -1); wrong axis convention?")
        K = np.asarray(frame.K, dtype=np.float64)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise SceneError(f"{where}: invalid intrinsics {K.tolist()}")
        if frame.width <= 0 or frame.height <= 0:
            raise SceneError(f"{where}: invalid image size {frame.width}x{frame.height}")
        if not all(math.isfinite(float(frame.distortion.get(k, 0.0))) for k in DISTORTION_KEYS):
            raise SceneError(f"{where}: distortion is not finite: {frame.distortion}")


# --------------------------------------------------------------------------------------- geometry


def _unit(v: np.ndarray, what: str) -> np.ndarray:
    n = np.linalg.norm(v)
    if n < 1e-12:
        raise SceneError(f"{what}: cameras' axes cancel out (no average direction)")
    return v / n


def max_view_angle(c2w: np.ndarray) -> float:
    """Largest angle (degrees) between a camera's viewing direction (``+z``) and the mean one."""
    forward = c2w[:, :3, 2]
    mean = forward.sum(axis=0)
    if np.linalg.norm(mean) < 1e-9:
        return 180.0
    mean = mean / np.linalg.norm(mean)
    return float(np.degrees(np.arccos(np.clip(forward @ mean, -1.0, 1.0))).max())


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest ``3x3`` rotation taking unit vector ``a`` onto unit vector ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    v, c = np.cross(a, b), float(a @ b)
    if c < -1.0 + 1e-9:  # opposite: half turn about any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def _similarity(R: np.ndarray, origin: np.ndarray, scale: float) -> Normalization:
    """``x_n = scale * R (x - origin)`` as a :class:`Normalization`."""
    T = np.eye(4)
    T[:3, :3] = scale * R
    T[:3, 3] = -scale * R @ origin
    return Normalization(T, float(scale))


def forward_facing_normalization(c2w: np.ndarray, bounds: np.ndarray) -> Normalization:
    """Mean camera onto the world axes, mean centre to the origin, scale ``1 / (0.75 min near)``.

    Args:
        c2w: ``Nx4x4`` OpenCV camera-to-world in the capture's frame.
        bounds: ``Nx2`` ``(near, far)`` in the capture's units.
    """
    z = _unit(c2w[:, :3, 2].sum(axis=0), "forward-facing normalisation")
    x = _unit(np.cross(c2w[:, :3, 1].sum(axis=0), z), "forward-facing normalisation")
    y = np.cross(z, x)
    mean_rotation = np.stack([x, y, z], axis=1)  # columns: the mean camera's axes in world
    scale = 1.0 / (NEAR_MARGIN * float(np.min(bounds[:, 0])))
    return _similarity(mean_rotation.T, c2w[:, :3, 3].mean(axis=0), scale)


def axes_focus(c2w: np.ndarray) -> np.ndarray:
    """The point nearest (least squares) to every camera's optical axis; the mean camera centre when
    the axes are (nearly) parallel."""
    origins, dirs = c2w[:, :3, 3], c2w[:, :3, 2]
    projectors = np.eye(3)[None] - dirs[:, :, None] * dirs[:, None, :]  # Nx3x3, I - d d^T
    A = projectors.sum(axis=0)
    b = (projectors @ origins[:, :, None]).sum(axis=0)[:, 0]
    if np.linalg.cond(A) > _PARALLEL_AXES_CONDITION:
        return origins.mean(axis=0)
    return np.linalg.solve(A, b)


def unbounded_normalization(c2w: np.ndarray) -> Normalization:
    """Origin at :func:`axes_focus`, average camera up onto ``+z``, farthest camera at distance 1."""
    focus = axes_focus(c2w)
    up = _unit(-c2w[:, :3, 1].sum(axis=0), "unbounded normalisation")
    R = rotation_between(up, np.array([0.0, 0.0, 1.0]))
    radius = float(np.linalg.norm(c2w[:, :3, 3] - focus, axis=1).max())
    return _similarity(R, focus, 1.0 / radius if radius > 1e-12 else 1.0)


def colmap_point_bounds(frames: tuple[Frame, ...], points: np.ndarray, source: Path) -> np.ndarray:
    """``Nx2`` per-frame ``(near, far)`` from the depths of the sparse points that project into the image."""
    bounds = np.zeros((len(frames), 2))
    for i, f in enumerate(frames):
        w2c = np.linalg.inv(f.c2w)
        cam = points @ w2c[:3, :3].T + w2c[:3, 3]
        z = cam[:, 2]
        front = z > 1e-9
        u = cam[front, 0] / z[front] * f.K[0, 0] + f.K[0, 2]
        v = cam[front, 1] / z[front] * f.K[1, 1] + f.K[1, 2]
        inside = (u >= 0) & (u < f.width) & (v >= 0) & (v < f.height)
        depths = z[front][inside]
        if depths.size < 2:
            raise SceneError(f"{source}: fewer than 2 sparse points in view of {Path(f.image).name}; cannot bound it")
        bounds[i] = np.percentile(depths, POINT_DEPTH_PERCENTILES)
    return bounds


# --------------------------------------------------------------------------------------- splits


def assign_every_nth(frames: tuple[Frame, ...], test_every: int) -> tuple[Frame, ...]:
    """Frames (already in name order) with indices ``0, n, 2n, ...`` marked ``"test"``, others ``"train"``."""
    return tuple(
        replace(f, split="test" if test_every and i % test_every == 0 else "train") for i, f in enumerate(frames)
    )


# --------------------------------------------------------------------------------------- entry point


@dataclass(frozen=True)
class _Loaded:
    frames: tuple[Frame, ...]
    pose_files: tuple[Path, ...]
    bounds: np.ndarray | None
    own_splits: bool
    skipped: int
    points_file: Path | None


def _load(scene_dir: Path, fmt: str, config: PreparePosesConfig, colmap_model: str | None = None) -> _Loaded:
    if colmap_model and fmt != "colmap":
        raise SceneError(f"{scene_dir}: colmap_model {colmap_model!r} is set but the scene's format is {fmt!r}")
    if fmt == "llff":
        cap = llff.load_llff(scene_dir, config.image_folder)
        return _Loaded(cap.frames, (cap.pose_file,) * len(cap.frames), cap.bounds, False, 0, None)
    if fmt == "colmap":
        cap = colmap.load_colmap(scene_dir, config.image_folder, model=colmap_model)
        return _Loaded(cap.frames, (cap.pose_file,) * len(cap.frames), None, False, 0, cap.sparse_dir)
    cap = transforms_json.load_transforms(scene_dir, config.image_folder)
    if cap.flavour != fmt:
        raise SceneError(
            f"{cap.pose_files[0]}: format {fmt!r} requested but the file is {cap.flavour!r} "
            f"({'camera_angle_x only' if cap.flavour == 'blender' else 'fl_x intrinsics'})"
        )
    return _Loaded(cap.frames, cap.pose_files, None, cap.own_splits, cap.skipped, None)


def prepare_scene(
    path: str | os.PathLike,
    format: str = "auto",
    kind: str | None = None,
    config: PreparePosesConfig = PreparePosesConfig(),
    colmap_model: str | None = None,
) -> Scene:
    """Load, validate, normalise and split a capture (the steps of the module docstring).

    Args:
        path: the scene folder.
        format: ``"auto"`` or one of :data:`FORMATS`.
        kind: ``None`` (decide from the data) or one of ``san.data.scene.SCENE_KINDS``.
        config: :class:`PreparePosesConfig`.
        colmap_model: COLMAP model folder relative to ``path`` (``"sparse/1"``; scene sheet column
            ``colmap_model``); ``None``: see :func:`san.data.colmap.choose_sparse_model`.

    Returns:
        A :class:`Scene` whose frames are in the normalised frame; nothing is written.

    Raises:
        SceneError: for any bad input, naming the file (see the loaders and :func:`validate_frames`).
    """
    scene_dir = Path(path)
    if not scene_dir.is_dir():
        raise SceneError(f"{scene_dir}: scene folder not found")
    if format != "auto" and format not in FORMATS:
        raise SceneError(f"{scene_dir}: format {format!r} is not one of auto, {', '.join(FORMATS)}")
    if kind is not None and kind not in SCENE_KINDS:
        raise SceneError(f"{scene_dir}: scene kind {kind!r} is not one of {', '.join(SCENE_KINDS)}")
    fmt = detect_format(scene_dir) if format == "auto" else format
    loaded = _load(scene_dir, fmt, config, colmap_model)
    validate_frames(loaded.frames, loaded.pose_files)

    c2w = Camera.stack(loaded.frames).c2w
    if kind is None:
        if fmt in ("llff", "colmap"):
            kind = "forward_facing" if max_view_angle(c2w) <= config.forward_facing_max_angle else "unbounded"
        else:
            kind = "unbounded"

    if kind == "forward_facing":
        bounds = loaded.bounds
        if bounds is None and loaded.points_file is not None:
            pfile = colmap.points_file(loaded.points_file)
            bounds = colmap_point_bounds(loaded.frames, colmap.read_points_xyz(pfile), pfile)
        if bounds is None:
            raise SceneError(
                f"{loaded.pose_files[0]}: a forward_facing scene needs near/far bounds, which {fmt} data does not "
                "provide; use kind: unbounded"
            )
        norm = forward_facing_normalization(c2w, bounds)
        near, far = float(bounds[:, 0].min()) * norm.scale, float(bounds[:, 1].max()) * norm.scale
    else:
        norm = unbounded_normalization(c2w)
        near, far = config.unbounded_near, config.unbounded_far

    frames = tuple(replace(f, camera=f.camera.with_c2w(norm.to_normalized_c2w(f.c2w))) for f in loaded.frames)
    validate_frames(frames, loaded.pose_files)
    if not loaded.own_splits:
        frames = assign_every_nth(frames, config.test_every)
    elif not any(f.split == "test" for f in frames):
        warnings.warn(
            f"{loaded.pose_files[0]}: no test frames (no {transforms_json.SPLIT_FILES['test']} beside it, or none of "
            f"its images on disk); holding out every {config.test_every}th train frame instead (poses.test_every)",
            CaptureWarning,
            stacklevel=2,
        )
        frames = assign_every_nth(frames, config.test_every)
    if not any(f.split == "train" for f in frames):
        raise SceneError(
            f"{loaded.pose_files[0]}: no training frames (test_every={config.test_every}, {len(frames)} frames)"
        )
    if not any(f.split == "test" for f in frames):
        raise SceneError(
            f"{loaded.pose_files[0]}: no test frames ({len(frames)} frames); evaluation needs held-out views"
        )
    for f in frames:
        verify_image(f.image)

    source = {
        "path": os.path.abspath(scene_dir),
        "format": fmt,
        "pose_file": os.path.abspath(loaded.pose_files[0]),
        "skipped_frames": loaded.skipped,
        "background": [float(c) for c in config.background],
    }
    return Scene(frames=frames, scene_kind=kind, near=near, far=far, normalization=norm, source=source)
