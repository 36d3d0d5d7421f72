"""COLMAP sparse models: read and write ``cameras``, ``images`` and ``points3D`` (binary and text).

Layout of a COLMAP scene folder (both spellings are found in the wild)::

    scene/
      sparse/0/{cameras,images,points3D}.{bin,txt}      (or colmap_sparse/0/...; sparse/1, ... when the
                                                        mapper split the capture: choose_sparse_model)
      images/            full-resolution photos (``images_N``: downscaled by N)

Conventions of the files (COLMAP's own, unchanged here):

* ``ColmapImage.qvec`` ``(w, x, y, z)`` and ``tvec`` are **world-to-camera** in the OpenCV camera
  frame: ``x_cam = R(qvec) @ x_world + tvec``.
* Intrinsics are in pixels of a ``width x height`` image with pixel ``(0, 0)``'s centre at
  ``(0.5, 0.5)``, the same convention as :mod:`san.cameras`.
* Supported camera models (:data:`SUPPORTED_MODELS`) and their ``params``::

      SIMPLE_PINHOLE  f, cx, cy
      PINHOLE         fx, fy, cx, cy
      SIMPLE_RADIAL   f, cx, cy, k
      RADIAL          f, cx, cy, k1, k2
      OPENCV          fx, fy, cx, cy, k1, k2, p1, p2

  Other models are read (their parameter count is known) but :func:`camera_intrinsics` rejects them.

The readers skip the 2D observations of each image (poses do not need them); the writers write none.
:func:`load_colmap` turns a scene folder into :class:`san.data.scene.Frame` s in the capture's own
world frame (camera-to-world, OpenCV), one per registered image, sorted by image name. Counts are
cross-checked: every model's size when there are several (a default model smaller than another is
refused), registered images against the photos on disk (a :class:`~san.data.scene.CaptureWarning`
counts the unregistered ones), and ``images.txt`` against its own ``# Number of images`` header and
two-lines-per-image layout.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np

from san.cameras import Camera, intrinsics_matrix, zero_distortion
from san.data.images import image_size, list_images, rescale_to_image, resolve_image_folder
from san.data.scene import CaptureWarning, Frame, SceneError

# COLMAP's model table: id -> (name, number of params). Only the first five are supported for poses.
CAMERA_MODELS: dict[int, tuple[str, int]] = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
}
MODEL_IDS: dict[str, int] = {name: i for i, (name, _) in CAMERA_MODELS.items()}
NUM_PARAMS: dict[str, int] = {name: n for name, n in CAMERA_MODELS.values()}
SUPPORTED_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")
SPARSE_DIRS = ("sparse/0", "colmap_sparse/0")
SPARSE_PARENTS = ("sparse", "colmap_sparse")
_DECLARED_IMAGES = re.compile(r"#\s*Number of images:\s*(\d+)")


@dataclass(frozen=True)
class ColmapCamera:
    """One COLMAP camera: ``model`` is a name from :data:`CAMERA_MODELS`, ``params`` as listed above."""

    id: int
    model: str
    width: int
    height: int
    params: tuple[float, ...]


@dataclass(frozen=True)
class ColmapImage:
    """One registered image: world-to-camera ``qvec (w, x, y, z)`` and ``tvec (3,)``; ``name`` is the
    path relative to the image folder."""

    id: int
    qvec: tuple[float, float, float, float]
    tvec: tuple[float, float, float]
    camera_id: int
    name: str


@dataclass(frozen=True)
class ColmapPoint3D:
    """One sparse point: ``xyz (3,)``, ``rgb (3,)`` in 0..255, reprojection ``error`` and its track
    as ``(image_id, point2D_index)`` pairs."""

    id: int
    xyz: tuple[float, float, float]
    rgb: tuple[int, int, int] = (128, 128, 128)
    error: float = 0.0
    track: tuple[tuple[int, int], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ColmapModel:
    """A sparse model read from ``folder``; ``points`` is empty unless asked for."""

    folder: Path
    cameras: dict[int, ColmapCamera]
    images: dict[int, ColmapImage]
    points: dict[int, ColmapPoint3D] = field(default_factory=dict)


# --------------------------------------------------------------------------------------- rotations


def qvec_to_rotmat(qvec) -> np.ndarray:
    """``(w, x, y, z)`` quaternion -> ``3x3`` rotation (not re-normalised: a bad quaternion shows up as
    a non-orthonormal matrix, which validation reports)."""
    w, x, y, z = (float(v) for v in qvec)
    return np.array(
        [
            [1 - 2 * y * y - 2 * z * z, 2 * x * y - 2 * w * z, 2 * z * x + 2 * w * y],
            [2 * x * y + 2 * w * z, 1 - 2 * x * x - 2 * z * z, 2 * y * z - 2 * w * x],
            [2 * z * x - 2 * w * y, 2 * y * z + 2 * w * x, 1 - 2 * x * x - 2 * y * y],
        ],
        dtype=np.float64,
    )


def rotmat_to_qvec(R) -> np.ndarray:
    """``3x3`` rotation -> unit quaternion ``(w, x, y, z)`` with ``w >= 0`` (eigenvector method, robust
    near 180 degrees)."""
    R = np.asarray(R, dtype=np.float64)
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = R
    sym = (
        np.array(
            [
                [r00 - r11 - r22, r10 + r01, r20 + r02, r21 - r12],
                [r10 + r01, r11 - r00 - r22, r21 + r12, r02 - r20],
                [r20 + r02, r21 + r12, r22 - r00 - r11, r10 - r01],
                [r21 - r12, r02 - r20, r10 - r01, r00 + r11 + r22],
            ]
        )
        / 3.0
    )
    values, vectors = np.linalg.eigh(sym)
    x, y, z, w = vectors[:, np.argmax(values)]
    q = np.array([w, x, y, z])
    return -q if q[0] < 0 else q


def image_c2w(image: ColmapImage) -> np.ndarray:
    """``4x4`` camera-to-world (OpenCV camera) of a COLMAP image."""
    R = qvec_to_rotmat(image.qvec)
    t = np.asarray(image.tvec, dtype=np.float64)
    c2w = np.eye(4)
    c2w[:3, :3] = R.T
    c2w[:3, 3] = -R.T @ t
    return c2w


def image_from_c2w(image_id: int, c2w: np.ndarray, camera_id: int, name: str) -> ColmapImage:
    """The :class:`ColmapImage` of an OpenCV camera-to-world (inverse of :func:`image_c2w`)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    R = c2w[:3, :3].T
    t = -R @ c2w[:3, 3]
    qvec = tuple(float(v) for v in rotmat_to_qvec(R))
    return ColmapImage(image_id, qvec, tuple(float(v) for v in t), camera_id, name)


# --------------------------------------------------------------------------------------- intrinsics


def camera_intrinsics(
    camera: ColmapCamera, source: str | os.PathLike = "cameras"
) -> tuple[np.ndarray, dict[str, float]]:
    """``(K 3x3, distortion dict)`` of a supported camera model, at the camera's own ``width x height``.

    Raises:
        SceneError: naming ``source`` when the model is not in :data:`SUPPORTED_MODELS` or has the
            wrong number of parameters.
    """
    model, p = camera.model, [float(v) for v in camera.params]
    if model not in SUPPORTED_MODELS:
        raise SceneError(
            f"{source}: camera {camera.id} uses camera model {model!r}, which is not supported "
            f"(supported: {', '.join(SUPPORTED_MODELS)}); undistort the images with COLMAP first"
        )
    if len(p) != NUM_PARAMS[model]:
        raise SceneError(f"{source}: camera {camera.id} ({model}) has {len(p)} params, expected {NUM_PARAMS[model]}")
    dist = zero_distortion()
    if model == "SIMPLE_PINHOLE":
        f, cx, cy = p
        fx = fy = f
    elif model == "PINHOLE":
        fx, fy, cx, cy = p
    elif model == "SIMPLE_RADIAL":
        f, cx, cy, dist["k1"] = p
        fx = fy = f
    elif model == "RADIAL":
        f, cx, cy, dist["k1"], dist["k2"] = p
        fx = fy = f
    else:  # OPENCV
        fx, fy, cx, cy, dist["k1"], dist["k2"], dist["p1"], dist["p2"] = p
    return intrinsics_matrix(fx, fy, cx, cy), dist


# --------------------------------------------------------------------------------------- finding models


def _is_model_dir(d: Path) -> bool:
    return (d / "cameras.bin").is_file() or (d / "cameras.txt").is_file()


def find_sparse_dir(scene_dir: str | os.PathLike) -> Path | None:
    """The first of ``sparse/0``, ``colmap_sparse/0`` under ``scene_dir`` that holds a cameras file;
    else the first model :func:`list_sparse_models` finds (``sparse/1`` alone, ``sparse`` itself)."""
    scene_dir = Path(scene_dir)
    for sub in SPARSE_DIRS:
        if _is_model_dir(scene_dir / sub):
            return scene_dir / sub
    models = list_sparse_models(scene_dir)
    return models[0] if models else None


def list_sparse_models(scene_dir: str | os.PathLike) -> list[Path]:
    """Every COLMAP model folder of a scene: ``sparse/N`` and ``colmap_sparse/N`` (numeric ``N``, in
    numeric order), or ``sparse`` itself when it holds the model files directly."""
    scene_dir = Path(scene_dir)
    models = []
    for parent in SPARSE_PARENTS:
        d = scene_dir / parent
        if not d.is_dir():
            continue
        if _is_model_dir(d):
            models.append(d)
        numbered = sorted((int(p.name), p) for p in d.iterdir() if p.name.isdigit() and p.is_dir() and _is_model_dir(p))
        models.extend(p for _, p in numbered)
    return models


def count_registered_images(folder: str | os.PathLike) -> int:
    """Number of images a model folder registers (the binary file's count, or the text file parsed)."""
    path = _model_file(Path(folder), "images")
    if path.suffix == ".bin":
        with open(path, "rb") as f:
            data = f.read(8)
        if len(data) != 8:
            raise SceneError(f"{path}: not a valid COLMAP file (file ends early (truncated))")
        return int(struct.unpack("<Q", data)[0])
    return len(read_images(path))


def _model_file(folder: Path, stem: str) -> Path:
    """``folder/stem.bin`` if present, else ``folder/stem.txt``; a clear error when neither is."""
    for ext in (".bin", ".txt"):
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    raise SceneError(f"{folder / stem}.bin: not found (nor {stem}.txt) in the COLMAP model folder {folder}")


def read_model(folder: str | os.PathLike, with_points: bool = False) -> ColmapModel:
    """Read a COLMAP model folder (binary files preferred over text where both exist)."""
    folder = Path(folder)
    cameras = read_cameras(_model_file(folder, "cameras"))
    images = read_images(_model_file(folder, "images"))
    points = read_points3D(_model_file(folder, "points3D")) if with_points else {}
    return ColmapModel(folder, cameras, images, points)


def read_cameras(path: str | os.PathLike) -> dict[int, ColmapCamera]:
    """``cameras.bin`` or ``cameras.txt`` -> ``{camera_id: ColmapCamera}``."""
    path = Path(path)
    return _read(path, _read_cameras_binary if path.suffix == ".bin" else _read_cameras_text)


def read_images(path: str | os.PathLike) -> dict[int, ColmapImage]:
    """``images.bin`` or ``images.txt`` -> ``{image_id: ColmapImage}`` (2D observations skipped)."""
    path = Path(path)
    return _read(path, _read_images_binary if path.suffix == ".bin" else _read_images_text)


def read_points3D(path: str | os.PathLike) -> dict[int, ColmapPoint3D]:
    """``points3D.bin`` or ``points3D.txt`` -> ``{point_id: ColmapPoint3D}``."""
    path = Path(path)
    return _read(path, _read_points_binary if path.suffix == ".bin" else _read_points_text)


def read_points_xyz(path: str | os.PathLike) -> np.ndarray:
    """Only the ``Nx3`` positions of ``points3D.{bin,txt}`` (what near/far bounds need)."""
    points = read_points3D(path)
    return np.array([p.xyz for p in points.values()], dtype=np.float64).reshape(-1, 3)


def _read(path: Path, reader):
    try:
        if path.suffix == ".bin":
            with open(path, "rb") as f:
                return reader(f, path)
        return reader(path.read_text().splitlines(), path)
    except FileNotFoundError as e:
        raise SceneError(f"{path}: not found") from e
    except (struct.error, UnicodeDecodeError, ValueError, IndexError) as e:
        if isinstance(e, SceneError):
            raise
        raise SceneError(f"{path}: not a valid COLMAP file ({type(e).__name__}: {e})") from e


# binary ---------------------------------------------------------------------------------------------


def _unpack(f: BinaryIO, fmt: str):
    size = struct.calcsize("<" + fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("file ends early (truncated)")
    return struct.unpack("<" + fmt, data)


def _read_cstring(f: BinaryIO) -> str:
    chars = bytearray()
    while (c := f.read(1)) != b"\x00":
        if not c:
            raise ValueError("file ends inside an image name (truncated)")
        chars += c
    return chars.decode("utf-8")


def _read_cameras_binary(f: BinaryIO, path: Path) -> dict[int, ColmapCamera]:
    cameras = {}
    (count,) = _unpack(f, "Q")
    for _ in range(count):
        cam_id, model_id, width, height = _unpack(f, "iiQQ")
        if model_id not in CAMERA_MODELS:
            raise SceneError(f"{path}: camera {cam_id} has unknown camera model id {model_id}")
        model, n = CAMERA_MODELS[model_id]
        cameras[cam_id] = ColmapCamera(cam_id, model, int(width), int(height), tuple(_unpack(f, "d" * n)))
    return cameras


def _read_images_binary(f: BinaryIO, path: Path) -> dict[int, ColmapImage]:
    images = {}
    (count,) = _unpack(f, "Q")
    for _ in range(count):
        values = _unpack(f, "idddddddi")
        name = _read_cstring(f)
        (num_points2d,) = _unpack(f, "Q")
        skip = num_points2d * struct.calcsize("<ddq")
        if len(f.read(skip)) != skip:
            raise ValueError("file ends inside the 2D points (truncated)")
        images[values[0]] = ColmapImage(values[0], tuple(values[1:5]), tuple(values[5:8]), values[8], name)
    if f.read(1):
        raise ValueError(f"the file declares {count} images but holds more data after them")
    return images


def _read_points_binary(f: BinaryIO, path: Path) -> dict[int, ColmapPoint3D]:
    points = {}
    (count,) = _unpack(f, "Q")
    for _ in range(count):
        pid, x, y, z, r, g, b, err, track_len = _unpack(f, "QdddBBBdQ")
        track = _unpack(f, "ii" * track_len)
        pairs = tuple((track[2 * i], track[2 * i + 1]) for i in range(track_len))
        points[pid] = ColmapPoint3D(pid, (x, y, z), (r, g, b), err, pairs)
    return points


# text -----------------------------------------------------------------------------------------------


def _data_lines(lines: Iterable[str]) -> list[str]:
    return [ln for ln in lines if not ln.lstrip().startswith("#")]


def _read_cameras_text(lines: list[str], path: Path) -> dict[int, ColmapCamera]:
    cameras = {}
    for ln in _data_lines(lines):
        if not ln.strip():
            continue
        parts = ln.split()
        cam_id, model = int(parts[0]), parts[1]
        if model not in NUM_PARAMS:
            raise SceneError(f"{path}: camera {cam_id} has unknown camera model {model!r}")
        cameras[cam_id] = ColmapCamera(cam_id, model, int(parts[2]), int(parts[3]), tuple(float(v) for v in parts[4:]))
    return cameras


def _read_images_text(lines: list[str], path: Path) -> dict[int, ColmapImage]:
    """Two lines per image; the second (its 2D points) may be empty, so blank lines only separate
    images where a header line is expected."""
    images = {}
    declared = next((int(m.group(1)) for ln in lines if (m := _DECLARED_IMAGES.search(ln))), None)
    data = _data_lines(lines)
    i = 0
    while i < len(data):
        if not data[i].strip():
            i += 1
            continue
        parts = data[i].split(maxsplit=9)
        if len(parts) < 10:
            raise ValueError(f"image line {data[i]!r} has fewer than 10 fields")
        image_id = int(parts[0])
        q = tuple(float(v) for v in parts[1:5])
        t = tuple(float(v) for v in parts[5:8])
        if image_id in images:
            raise SceneError(f"{path}: image id {image_id} appears twice (line {data[i]!r})")
        images[image_id] = ColmapImage(image_id, q, t, int(parts[8]), parts[9].strip())
        if i + 1 < len(data) and _looks_like_image_line(data[i + 1]):
            raise SceneError(
                f"{path}: line {data[i + 1].strip()!r} is an image line where the 2D points line of image "
                f"{image_id} was expected; images.txt needs two lines per image (the second may be empty)"
            )
        i += 2  # skip the 2D points line
    if declared is not None and declared != len(images):
        raise SceneError(f"{path}: the header declares {declared} images but {len(images)} were read")
    return images


def _looks_like_image_line(line: str) -> bool:
    """``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` with a name that has an image suffix."""
    from san.data.images import is_image_file

    parts = line.split(maxsplit=9)
    if len(parts) != 10 or not is_image_file(parts[9].strip()):
        return False
    try:
        int(parts[0]), int(parts[8]), [float(v) for v in parts[1:8]]
    except ValueError:
        return False
    return True


def _read_points_text(lines: list[str], path: Path) -> dict[int, ColmapPoint3D]:
    points = {}
    for ln in _data_lines(lines):
        if not ln.strip():
            continue
        parts = ln.split()
        pid = int(parts[0])
        track_values = [int(v) for v in parts[8:]]
        pairs = tuple(zip(track_values[0::2], track_values[1::2]))
        points[pid] = ColmapPoint3D(
            pid, tuple(float(v) for v in parts[1:4]), tuple(int(v) for v in parts[4:7]), float(parts[7]), pairs
        )
    return points


# --------------------------------------------------------------------------------------- writers


def _floats(values) -> list[str]:
    """Shortest exact text of each float (round-trips bit for bit)."""
    return [repr(float(v)) for v in values]


def _check_camera(camera: ColmapCamera) -> None:
    if camera.model not in NUM_PARAMS:
        raise ValueError(f"camera {camera.id}: unknown camera model {camera.model!r}")
    if len(camera.params) != NUM_PARAMS[camera.model]:
        expected = NUM_PARAMS[camera.model]
        raise ValueError(f"camera {camera.id} ({camera.model}): {len(camera.params)} params, expected {expected}")


def write_model_text(
    folder: str | os.PathLike,
    cameras: Iterable[ColmapCamera],
    images: Iterable[ColmapImage],
    points: Iterable[ColmapPoint3D] | None = None,
) -> Path:
    """Write ``cameras.txt``, ``images.txt`` and ``points3D.txt`` into ``folder`` (created).

    Images are written with an empty 2D-points line. Returns ``folder``.
    """
    from san.utils.io import atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cameras, images, points = list(cameras), list(images), list(points or [])
    for cam in cameras:
        _check_camera(cam)
    cam_lines = [
        "# Camera list with one line of data per camera:",
        "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
        f"# Number of cameras: {len(cameras)}",
    ]
    for c in cameras:
        cam_lines.append(" ".join([str(c.id), c.model, str(c.width), str(c.height), *_floats(c.params)]))
    img_lines = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
        f"# Number of images: {len(images)}",
    ]
    for im in images:
        img_lines.append(" ".join([str(im.id), *_floats((*im.qvec, *im.tvec)), str(im.camera_id), im.name]))
        img_lines.append("")
    pt_lines = [
        "# 3D point list with one line of data per point:",
        "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
        f"# Number of points: {len(points)}",
    ]
    for p in points:
        track = [str(v) for pair in p.track for v in pair]
        rgb = [str(int(c)) for c in p.rgb]
        pt_lines.append(" ".join([str(p.id), *_floats(p.xyz), *rgb, *_floats([p.error]), *track]))
    atomic_write_text(folder / "cameras.txt", "\n".join(cam_lines) + "\n")
    atomic_write_text(folder / "images.txt", "\n".join(img_lines) + "\n")
    atomic_write_text(folder / "points3D.txt", "\n".join(pt_lines) + "\n")
    return folder


def write_model_binary(
    folder: str | os.PathLike,
    cameras: Iterable[ColmapCamera],
    images: Iterable[ColmapImage],
    points: Iterable[ColmapPoint3D] | None = None,
) -> Path:
    """Write ``cameras.bin``, ``images.bin`` and ``points3D.bin`` into ``folder`` (created)."""
    from san.utils.io import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cameras, images, points = list(cameras), list(images), list(points or [])
    for cam in cameras:
        _check_camera(cam)
    with atomic_path(folder / "cameras.bin") as tmp, open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(cameras)))
        for c in cameras:
            f.write(struct.pack("<iiQQ", c.id, MODEL_IDS[c.model], c.width, c.height))
            f.write(struct.pack("<" + "d" * len(c.params), *(float(p) for p in c.params)))
    with atomic_path(folder / "images.bin") as tmp, open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(images)))
        for im in images:
            f.write(struct.pack("<idddddddi", im.id, *(float(v) for v in (*im.qvec, *im.tvec)), im.camera_id))
            f.write(im.name.encode("utf-8") + b"\x00")
            f.write(struct.pack("<Q", 0))
    with atomic_path(folder / "points3D.bin") as tmp, open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(points)))
        for p in points:
            xyz, rgb = (float(v) for v in p.xyz), (int(c) for c in p.rgb)
            f.write(struct.pack("<QdddBBBdQ", p.id, *xyz, *rgb, float(p.error), len(p.track)))
            for image_id, idx in p.track:
                f.write(struct.pack("<ii", image_id, idx))
    return folder


# --------------------------------------------------------------------------------------- scene loading


@dataclass(frozen=True)
class ColmapCapture:
    """A COLMAP scene in its own world frame.

    Attributes:
        frames: one :class:`Frame` per registered image, sorted by name, OpenCV ``c2w``, intrinsics
            and distortion for the image on disk, split ``"train"`` (splits are assigned later).
        sparse_dir: the model folder read (``.../sparse/0``).
        pose_file: ``images.bin`` or ``images.txt``.
        image_folder: the image folder used.
    """

    frames: tuple[Frame, ...]
    sparse_dir: Path
    pose_file: Path
    image_folder: Path


def _model_sizes(scene_dir: Path, models: list[Path]) -> str:
    sizes = []
    for m in models:
        try:
            sizes.append(f"{m.relative_to(scene_dir)} ({count_registered_images(m)} images)")
        except SceneError as e:
            sizes.append(f"{m.relative_to(scene_dir)} (unreadable: {e})")
    return ", ".join(sizes)


def choose_sparse_model(scene_dir: str | os.PathLike, model: str | None = None) -> Path:
    """The model folder to read: ``model`` (relative to ``scene_dir``, e.g. ``"sparse/1"``) when given,
    else ``sparse/0`` / ``colmap_sparse/0``.

    COLMAP's mapper may split a capture into several models, numbered by creation, not size. When
    another model registers more images than the default one, the choice is refused with every
    model's size (choose one with the scene sheet's ``colmap_model`` column); when the default one
    is the largest, the others are reported in a :class:`CaptureWarning`.

    Raises:
        SceneError: no model, an unknown ``model`` (the path tried and the models found), or a
            default model that is not the largest.
    """
    scene_dir = Path(scene_dir)
    models = list_sparse_models(scene_dir)
    if model:
        chosen = scene_dir / model
        if not _is_model_dir(chosen):
            found = _model_sizes(scene_dir, models) or "none"
            raise SceneError(
                f"{chosen}: no COLMAP model (cameras.bin/.txt) there (colmap_model {model!r}); models found: {found}"
            )
        return chosen
    sparse = find_sparse_dir(scene_dir)
    if sparse is None:
        raise SceneError(
            f"{scene_dir / SPARSE_DIRS[0]}: no COLMAP model (cameras.bin/.txt) in {' or '.join(SPARSE_DIRS)}"
        )
    if len(models) > 1:
        counts = {m: count_registered_images(m) for m in models}
        largest = max(models, key=lambda m: counts[m])
        sizes = _model_sizes(scene_dir, models)
        if counts[largest] > counts[sparse]:
            try:
                folder = resolve_image_folder(scene_dir)
                sizes += f"; {len(list_images(folder))} photos in {folder.relative_to(scene_dir)}"
            except SceneError:
                pass
            raise SceneError(
                f"{scene_dir}: COLMAP wrote {len(models)} models: {sizes}. The default "
                f"{sparse.relative_to(scene_dir)} is not the largest: choose one in the scene sheet's colmap_model "
                f"column (e.g. {largest.relative_to(scene_dir)})"
            )
        warnings.warn(
            f"{scene_dir}: COLMAP wrote {len(models)} models: {sizes}; using {sparse.relative_to(scene_dir)}",
            CaptureWarning,
            stacklevel=3,
        )
    return sparse


def load_colmap(
    scene_dir: str | os.PathLike, image_folder: str | None = None, model: str | None = None
) -> ColmapCapture:
    """Read a COLMAP scene: a model folder (:func:`choose_sparse_model`) and the images beside it.

    Intrinsics are rescaled from each camera's ``width x height`` to the image on disk, so
    ``image_folder="images_4"`` works with a full-resolution model. Every image's header is checked.
    Photos in the image folder that the model does not register are counted in a
    :class:`CaptureWarning` (a partial reconstruction is the usual cause).

    Raises:
        SceneError: naming the file for a missing model, unsupported camera model, an image that
            refers to an unknown camera, a registered image missing on disk, a count that disagrees
            with the file's own header, or no images.
    """
    scene_dir = Path(scene_dir)
    sparse = choose_sparse_model(scene_dir, model)
    camera_file = _model_file(sparse, "cameras")
    image_file = _model_file(sparse, "images")
    cameras = read_cameras(camera_file)
    images = read_images(image_file)
    if not images:
        raise SceneError(f"{image_file}: no registered images")
    intrinsics = {cid: camera_intrinsics(cam, camera_file) for cid, cam in cameras.items()}
    for im in images.values():
        if im.camera_id not in cameras:
            raise SceneError(f"{image_file}: image {im.name!r} refers to camera {im.camera_id}, not in {camera_file}")
    folder = resolve_image_folder(scene_dir, image_folder)
    frames = []
    for im in sorted(images.values(), key=lambda im: im.name):
        cam = cameras[im.camera_id]
        K, dist = intrinsics[im.camera_id]
        path = folder / im.name
        w, h = image_size(path)
        K = rescale_to_image(K, (cam.width, cam.height), (w, h), path)
        frames.append(Frame(os.path.abspath(path), Camera(image_c2w(im), K, w, h), dict(dist)))
    registered = {Path(im.name).as_posix() for im in images.values()}
    photos = list_images(folder)
    unregistered = [p.name for p in photos if p.name not in registered]
    if unregistered:
        warnings.warn(
            f"{image_file}: registers {len(images)} images; {len(unregistered)} of the {len(photos)} photos in {folder} "
            f"are not registered (first: {', '.join(unregistered[:3])}); the reconstruction is partial",
            CaptureWarning,
            stacklevel=2,
        )
    return ColmapCapture(tuple(frames), sparse, image_file, folder)


def points_file(sparse_dir: str | os.PathLike) -> Path:
    """``points3D.bin`` or ``points3D.txt`` of a model folder (error naming the folder when absent)."""
    return _model_file(Path(sparse_dir), "points3D")
