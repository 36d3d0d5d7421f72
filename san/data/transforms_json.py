"""``transforms*.json`` captures: Blender (NeRF-synthetic) and nerfstudio / instant-ngp.

Files and splits:

* ``transforms_train.json`` (+ ``transforms_test.json``): the Blender layout. Frames of the train file
  get split ``"train"``, frames of the test file ``"test"``; ``transforms_val.json`` is not used.
* ``transforms.json``: one file (nerfstudio, instant-ngp); splits are assigned later (every
  ``test_every``-th frame in name order, see :mod:`san.data.prepare`).

Flavour: a file with ``camera_angle_x`` and no ``fl_x`` is ``"blender"``, otherwise ``"nerfstudio"``.

Intrinsics (keys of the file's top level, overridden by the same keys on a frame):

* ``fl_x``, ``fl_y`` (defaults to ``fl_x``), ``cx``, ``cy`` (default: image centre), ``w``, ``h``
  (default: the image's size on disk), distortion ``k1 k2 k3 k4 p1 p2`` (default 0), and
  ``camera_model`` ``OPENCV`` (default), ``PINHOLE`` or ``SIMPLE_PINHOLE`` (these two must not carry
  distortion). Other models (fisheye, equirectangular) are rejected.
* Blender: ``camera_angle_x`` (horizontal field of view, radians): ``f = 0.5 w / tan(0.5 angle)``
  for both axes (``camera_angle_y`` sets ``fy`` when present).
* Intrinsics are rescaled from ``w x h`` to the image actually on disk.

Poses: ``transform_matrix`` is camera-to-world in the OpenGL camera convention ``(right, up, back)``;
it is converted to OpenCV by negating the ``y`` and ``z`` columns.

Images: ``file_path`` relative to the JSON's folder, resolved as the common writers intend
(:func:`resolve_file_path`): backslashes (files written on Windows by colmap2nerf or BlenderNeRF) are
path separators; a path without an image suffix gets the first of :data:`IMAGE_SUFFIX_TRIES` that
exists (Blender writes ``.png``, instant-ngp/nerfstudio exporters sometimes drop ``.jpg``). With
``image_folder`` set (e.g. ``"images_4"``), a leading ``images/`` component is replaced by it
(nerfstudio's downscaled folders). Frames whose image file does not exist are skipped, with one
:class:`MissingFramesWarning` that counts them and shows the first paths tried; when no frame has
its image the error shows them too. An image that exists but cannot be read is an error.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from san.cameras import DISTORTION_KEYS, Camera, intrinsics_matrix, zero_distortion
from san.data.images import image_size, is_image_file, rescale_to_image
from san.data.scene import CaptureWarning, Frame, SceneError

SINGLE_FILE = "transforms.json"
SPLIT_FILES = {"train": "transforms_train.json", "test": "transforms_test.json"}
SUPPORTED_CAMERA_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE")
FLAVOURS = ("blender", "nerfstudio")
IMAGE_SUFFIX_TRIES = (".png", ".jpg", ".jpeg", ".JPG", ".JPEG", ".PNG", ".exr", ".tif", ".tiff", ".webp", ".bmp")

# OpenGL camera (right, up, back) -> OpenCV (right, down, forward): negate the y and z columns.
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


class MissingFramesWarning(CaptureWarning):
    """Some frames of a ``transforms*.json`` were skipped because their image file is missing."""


@dataclass(frozen=True)
class TransformsCapture:
    """A ``transforms*.json`` scene in its own world frame.

    Attributes:
        frames: the frames whose images exist, OpenCV ``c2w``; with ``own_splits`` their ``split``
            is set from the file they come from, otherwise ``"train"`` (assigned later).
        pose_files: the JSON file of each frame (for error messages).
        flavour: ``"blender"`` or ``"nerfstudio"``.
        own_splits: whether the splits come from ``transforms_{train,test}.json``.
        skipped: the number of frames skipped for a missing image.
    """

    frames: tuple[Frame, ...]
    pose_files: tuple[Path, ...]
    flavour: str
    own_splits: bool
    skipped: int


def transforms_files(scene_dir: str | os.PathLike) -> dict[str, Path]:
    """``{split: file}``: ``{"train": ..., "test": ...}`` for the Blender layout, ``{"": transforms.json}``
    for a single file, ``{}`` when there is none."""
    scene_dir = Path(scene_dir)
    if (scene_dir / SPLIT_FILES["train"]).is_file():
        return {split: scene_dir / name for split, name in SPLIT_FILES.items() if (scene_dir / name).is_file()}
    if (scene_dir / SINGLE_FILE).is_file():
        return {"": scene_dir / SINGLE_FILE}
    return {}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SceneError(f"{path}: not valid JSON ({e})") from e
    except OSError as e:
        raise SceneError(f"{path}: cannot read ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise SceneError(f"{path}: expected an object with a 'frames' list")
    return data


def flavour_of(data: dict) -> str:
    """``"blender"`` when the file's intrinsics are ``camera_angle_x`` only, else ``"nerfstudio"``."""
    return "blender" if "camera_angle_x" in data and "fl_x" not in data else "nerfstudio"


def detect_flavour(scene_dir: str | os.PathLike) -> str:
    """Flavour of the first ``transforms*.json`` in ``scene_dir``."""
    files = transforms_files(scene_dir)
    if not files:
        raise SceneError(f"{Path(scene_dir) / SINGLE_FILE}: not found (nor {SPLIT_FILES['train']})")
    return flavour_of(_read_json(next(iter(files.values()))))


def resolve_file_path(json_dir: Path, file_path: str, image_folder: str | None = None) -> tuple[Path, list[Path]]:
    """``(path, tried)``: the image a frame's ``file_path`` names, and every path tried.

    ``path`` is the first candidate that exists, else the path as written (so errors can show it).
    Backslashes are separators; ``./`` components are dropped; without an image suffix, the suffixes
    of :data:`IMAGE_SUFFIX_TRIES` are tried in order.
    """
    normalised = file_path.replace("\\", "/")
    parts = [p for p in Path(normalised).parts if p != "."]
    if image_folder is not None and parts and parts[0] == "images":
        parts[0] = image_folder
    path = json_dir.joinpath(*parts)
    tried = [path]
    if not is_image_file(path):
        tried += [path.with_name(path.name + ext) for ext in IMAGE_SUFFIX_TRIES]
    for candidate in tried:
        if candidate.is_file():
            return candidate, tried
    return path, tried


def _number(meta: dict, key: str, where: str) -> float:
    value = meta[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SceneError(f"{where}: {key}={value!r} is not a finite number")
    return float(value)


def frame_intrinsics(meta: dict, size_on_disk: tuple[int, int], where: str) -> tuple[np.ndarray, dict[str, float]]:
    """``(K, distortion)`` for the image on disk from merged top-level + frame keys (module docstring)."""
    model = meta.get("camera_model", "OPENCV")
    if model not in SUPPORTED_CAMERA_MODELS:
        supported = ", ".join(SUPPORTED_CAMERA_MODELS)
        raise SceneError(f"{where}: camera_model {model!r} is not supported (supported: {supported})")
    w = _number(meta, "w", where) if "w" in meta else float(size_on_disk[0])
    h = _number(meta, "h", where) if "h" in meta else float(size_on_disk[1])
    if "fl_x" in meta:
        fx = _number(meta, "fl_x", where)
        fy = _number(meta, "fl_y", where) if "fl_y" in meta else fx
    elif "camera_angle_x" in meta:
        fx = 0.5 * w / math.tan(0.5 * _number(meta, "camera_angle_x", where))
        fy = 0.5 * h / math.tan(0.5 * _number(meta, "camera_angle_y", where)) if "camera_angle_y" in meta else fx
    else:
        raise SceneError(f"{where}: no focal length (neither fl_x nor camera_angle_x)")
    if fx <= 0 or fy <= 0:
        raise SceneError(f"{where}: focal length must be positive, got fx={fx}, fy={fy}")
    cx = _number(meta, "cx", where) if "cx" in meta else w / 2.0
    cy = _number(meta, "cy", where) if "cy" in meta else h / 2.0
    dist = zero_distortion()
    for key in DISTORTION_KEYS:
        if key in meta:
            dist[key] = _number(meta, key, where)
    if model != "OPENCV" and any(dist.values()):
        raise SceneError(f"{where}: camera_model {model} cannot have distortion {dist}; use camera_model OPENCV")
    K = rescale_to_image(intrinsics_matrix(fx, fy, cx, cy), (round(w), round(h)), size_on_disk, where)
    return K, dist


def _pose(frame: dict, where: str) -> np.ndarray:
    try:
        m = np.asarray(frame["transform_matrix"], dtype=np.float64)
    except KeyError as e:
        raise SceneError(f"{where}: no transform_matrix") from e
    except (TypeError, ValueError) as e:
        raise SceneError(f"{where}: transform_matrix is not a numeric matrix") from e
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4):
        raise SceneError(f"{where}: transform_matrix has shape {m.shape}, expected 4x4")
    return m @ OPENGL_TO_OPENCV


def load_transforms(scene_dir: str | os.PathLike, image_folder: str | None = None) -> TransformsCapture:
    """Read the ``transforms*.json`` of ``scene_dir`` (see the module docstring).

    Frames keep the file order for the Blender layout and are sorted by image path otherwise.

    Raises:
        SceneError: naming the JSON file for bad JSON, missing keys, unsupported camera models,
            an unreadable image, or when no frame has an image on disk.
    """
    scene_dir = Path(scene_dir)
    files = transforms_files(scene_dir)
    if not files:
        raise SceneError(f"{scene_dir / SINGLE_FILE}: not found (nor {SPLIT_FILES['train']})")
    own_splits = "" not in files
    frames: list[Frame] = []
    pose_files: list[Path] = []
    skipped, total, flavour = 0, 0, None
    missing: list[str] = []
    suffixless = False
    for split, path in files.items():
        data = _read_json(path)
        flavour = flavour or flavour_of(data)
        top = {k: v for k, v in data.items() if k != "frames"}
        for i, frame in enumerate(data["frames"]):
            total += 1
            if not isinstance(frame, dict) or "file_path" not in frame:
                raise SceneError(f"{path}: frame {i} has no file_path")
            where = f"{path} (frame {i}, {frame['file_path']})"
            image, tried = resolve_file_path(path.parent, str(frame["file_path"]), image_folder)
            if not image.is_file():
                skipped += 1
                suffixless = suffixless or len(tried) > 1
                if len(missing) < 3:
                    missing.append(f"file_path {frame['file_path']!r} -> {tried[0]}")
                continue
            size = image_size(image)
            K, dist = frame_intrinsics({**top, **frame}, size, where)
            c2w = _pose(frame, where)
            frames.append(Frame(os.path.abspath(image), Camera(c2w, K, size[0], size[1]), dist, split or "train"))
            pose_files.append(path)
    names = ", ".join(str(p) for p in files.values())
    paths_tried = "; ".join(missing) + (" ..." if skipped > len(missing) else "")
    if suffixless:
        paths_tried += f" (a path without an image suffix was also tried with {', '.join(IMAGE_SUFFIX_TRIES)})"
    if not frames:
        raise SceneError(f"{names}: none of the {total} frames has its image file on disk; paths tried: {paths_tried}")
    if skipped:
        warnings.warn(
            f"{names}: skipped {skipped} of {total} frames whose image file is missing; paths tried: {paths_tried}",
            MissingFramesWarning,
            stacklevel=2,
        )
    if not own_splits:
        order = sorted(range(len(frames)), key=lambda i: frames[i].image)
        frames = [frames[i] for i in order]
        pose_files = [pose_files[i] for i in order]
    return TransformsCapture(tuple(frames), tuple(pose_files), flavour, own_splits, skipped)
