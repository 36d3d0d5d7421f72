"""The normalised scene record every later stage reads: ``poses/cameras.json``.

``cameras.json`` (written by :func:`save_scene`, read by :func:`load_scene`)::

    {
      "format_version": 1,
      "source": {"path": "...", "format": "llff" | "colmap" | "blender" | "nerfstudio"},
      "scene_kind": "forward_facing" | "unbounded",
      "near": float, "far": float,            # in the normalised frame, along rays
      "normalization": {
        "transform": 4x4,                     # x_normalised = transform @ [x_input, 1]
        "scale": float                        # the isotropic scale inside ``transform``
      },
      "frames": [
        {"image": "/abs/path.png", "width": int, "height": int,
         "K": 3x3, "distortion": {"k1":..,"k2":..,"k3":..,"k4":..,"p1":..,"p2":..},
         "c2w": 4x4 (normalised frame, OpenCV camera), "split": "train" | "test"}
      ]
    }

Any output in the normalised frame maps back to the capture's own frame with
:meth:`Normalization.to_input_points` / :meth:`Normalization.to_input_c2w`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from san.cameras import DISTORTION_KEYS, Camera, HoldsCamera, zero_distortion

FORMAT_VERSION = 1
SCENE_KINDS = ("forward_facing", "unbounded")


class SceneError(ValueError):
    """Bad scene input. The message always names the offending file."""


class CaptureWarning(UserWarning):
    """A capture that loads but is probably not what the user meant (a partial reconstruction,
    photos without poses, several COLMAP models); the message names the file and gives the counts."""


@dataclass(frozen=True)
class Frame(HoldsCamera):
    """One posed image in the normalised frame (see :mod:`san.cameras` for conventions).

    Attributes:
        image: the image file's path.
        camera: one :class:`~san.cameras.Camera`: ``c2w`` ``4x4`` (OpenCV camera, normalised world),
            ``K`` ``3x3`` in pixels of the ``width x height`` image; ``frame.c2w``, ``frame.K``,
            ``frame.width``, ``frame.height`` read it.
        distortion: the capture's OpenCV coefficients (:data:`san.cameras.DISTORTION_KEYS`).
        split: ``train`` or ``test``.

    Raises :class:`~san.cameras.CameraError` when ``camera`` is not one unbatched camera.
    """

    image: str
    camera: Camera
    distortion: dict[str, float] = field(default_factory=zero_distortion)
    split: str = "train"

    def __post_init__(self) -> None:
        self._check_camera(f"frame {self.image}")

    def to_json(self) -> dict:
        return {
            "image": self.image,
            "width": int(self.width),
            "height": int(self.height),
            "K": np.asarray(self.K, dtype=float).tolist(),
            "distortion": {k: float(self.distortion.get(k, 0.0)) for k in DISTORTION_KEYS},
            "c2w": np.asarray(self.c2w, dtype=float).tolist(),
            "split": self.split,
        }

    @classmethod
    def from_json(cls, d: dict) -> "Frame":
        return cls(
            image=d["image"],
            camera=Camera(
                np.asarray(d["c2w"], dtype=np.float64),
                np.asarray(d["K"], dtype=np.float64),
                int(d["width"]),
                int(d["height"]),
            ),
            distortion={k: float(d.get("distortion", {}).get(k, 0.0)) for k in DISTORTION_KEYS},
            split=d.get("split", "train"),
        )


@dataclass(frozen=True)
class Normalization:
    """Similarity transform from the capture's frame into ``san``'s normalised frame.

    ``transform`` is ``4x4`` ``[[s R, s t], [0, 1]]``: ``x_n = s (R x_in + t)``.
    """

    transform: np.ndarray
    scale: float

    @classmethod
    def identity(cls) -> "Normalization":
        return cls(np.eye(4), 1.0)

    @property
    def inverse(self) -> np.ndarray:
        return np.linalg.inv(self.transform)

    def to_input_points(self, points: np.ndarray) -> np.ndarray:
        """``Nx3`` normalised points -> ``Nx3`` points in the capture's frame."""
        inv = self.inverse
        return np.asarray(points, dtype=np.float64) @ inv[:3, :3].T + inv[:3, 3]

    def to_normalized_points(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) @ self.transform[:3, :3].T + self.transform[:3, 3]

    def to_normalized_c2w(self, c2w: np.ndarray) -> np.ndarray:
        """``...x4x4`` capture-frame camera-to-world -> normalised (rotation stays orthonormal)."""
        c2w = np.asarray(c2w, dtype=np.float64)
        out = np.array(c2w, copy=True)
        R = self.transform[:3, :3] / self.scale
        out[..., :3, :3] = R @ c2w[..., :3, :3]
        out[..., :3, 3] = (self.transform[:3, :3] @ c2w[..., :3, 3, None])[..., 0] + self.transform[:3, 3]
        return out

    def to_input_c2w(self, c2w: np.ndarray) -> np.ndarray:
        inv = Normalization(self.inverse, 1.0 / self.scale)
        return inv.to_normalized_c2w(c2w)

    def to_json(self) -> dict:
        return {"transform": np.asarray(self.transform, dtype=float).tolist(), "scale": float(self.scale)}

    @classmethod
    def from_json(cls, d: dict) -> "Normalization":
        return cls(np.asarray(d["transform"], dtype=np.float64), float(d["scale"]))


@dataclass(frozen=True)
class Scene:
    """A loaded, normalised scene: frames plus the bounds and kind that samplers need."""

    frames: tuple[Frame, ...]
    scene_kind: str
    near: float
    far: float
    normalization: Normalization
    source: dict = field(default_factory=dict)

    def split(self, name: str) -> tuple[Frame, ...]:
        return tuple(f for f in self.frames if f.split == name)

    @property
    def train_frames(self) -> tuple[Frame, ...]:
        return self.split("train")

    @property
    def test_frames(self) -> tuple[Frame, ...]:
        return self.split("test")

    def indices(self, name: str) -> list[int]:
        return [i for i, f in enumerate(self.frames) if f.split == name]

    def to_json(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "source": dict(self.source),
            "scene_kind": self.scene_kind,
            "near": float(self.near),
            "far": float(self.far),
            "normalization": self.normalization.to_json(),
            "frames": [f.to_json() for f in self.frames],
        }


def save_scene(scene: Scene, path: str | os.PathLike) -> None:
    """Write ``cameras.json`` atomically (temporary file, then rename); strict JSON (NaN refused)."""
    from san.utils.io import atomic_write_text

    atomic_write_text(Path(path), json.dumps(scene.to_json(), indent=1, allow_nan=False))


def load_scene(path: str | os.PathLike) -> Scene:
    """Read a ``cameras.json`` written by :func:`save_scene`, validating it."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise SceneError(f"{path}: no such cameras file (run rule prepare_poses first)") from e
    except json.JSONDecodeError as e:
        raise SceneError(f"{path}: not valid JSON ({e})") from e
    if d.get("format_version") != FORMAT_VERSION:
        raise SceneError(f"{path}: format_version {d.get('format_version')!r}, expected {FORMAT_VERSION}")
    if d.get("scene_kind") not in SCENE_KINDS:
        raise SceneError(f"{path}: scene_kind {d.get('scene_kind')!r} is not one of {SCENE_KINDS}")
    frames = tuple(Frame.from_json(f) for f in d["frames"])
    if not frames:
        raise SceneError(f"{path}: no frames")
    return Scene(
        frames=frames,
        scene_kind=d["scene_kind"],
        near=float(d["near"]),
        far=float(d["far"]),
        normalization=Normalization.from_json(d["normalization"]),
        source=d.get("source", {}),
    )
