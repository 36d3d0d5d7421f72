"""Reading captured images: cheap header checks for validation, full decoding for training.

* :func:`image_size` opens only the header (PIL is lazy); :func:`verify_image` decodes every pixel
  once, which ``prepare_poses`` does for every image of a scene before any heavy work.
* :func:`load_image` returns ``HxWx3`` ``float32`` in ``[0, 1]``. Images with an alpha channel
  (Blender renders are straight, not premultiplied, RGBA) are composited on ``background``:
  ``rgb * a + background * (1 - a)``. With ``background=None`` the alpha channel is dropped.
  Loaders of a prepared scene pass ``scene.source["background"]`` (see :mod:`san.data.prepare`).

Both raise :class:`san.data.scene.SceneError` naming the file when it is missing or unreadable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from san.data.scene import SceneError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".bmp", ".webp")


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path``'s suffix (any case) is an image format ``san`` reads."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (the order every loader uses)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SceneError(f"{folder}: image folder not found")
    return sorted((p for p in folder.iterdir() if p.is_file() and is_image_file(p)), key=lambda p: p.name)


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise SceneError(f"{path}: image file not found")
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as e:
        raise SceneError(f"{path}: cannot read image ({type(e).__name__}: {e})") from e


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image, reading only its header."""
    path = Path(path)
    with _open(path) as im:
        width, height = im.size
    if width <= 0 or height <= 0:
        raise SceneError(f"{path}: image has an empty size {width}x{height}")
    return int(width), int(height)


def verify_image(path: str | os.PathLike) -> tuple[int, int]:
    """Decode every pixel of an image once (a truncated or corrupt file fails here, not after
    training); returns ``(width, height)``.

    Raises:
        SceneError: naming ``path`` when it is missing, unreadable or cannot be fully decoded.
    """
    path = Path(path)
    with _open(path) as im:
        try:
            im.load()
        except (OSError, ValueError, SyntaxError) as e:
            raise SceneError(
                f"{path}: cannot decode image, the file is truncated or corrupt ({type(e).__name__}: {e})"
            ) from e
        width, height = im.size
    if width <= 0 or height <= 0:
        raise SceneError(f"{path}: image has an empty size {width}x{height}")
    return int(width), int(height)


def _to_float(im: Image.Image, path: Path) -> np.ndarray:
    """Decode to ``HxWxC`` float in ``[0, 1]`` with ``C`` in ``{3, 4}`` (4 when there is alpha)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        gray = np.asarray(im, dtype=np.float64) / 65535.0  # 16-bit grey PNGs (PIL opens some as "I")
        return np.repeat(gray[..., None], 3, axis=-1)
    if im.mode == "F":
        gray = np.asarray(im, dtype=np.float64)
        return np.repeat(gray[..., None], 3, axis=-1)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.float64) / 255.0
    if arr.ndim != 3:
        raise SceneError(f"{path}: unexpected image layout {arr.shape} (mode {im.mode})")
    return arr


def load_image(path: str | os.PathLike, background: Sequence[float] | None = None) -> np.ndarray:
    """Decode an image to ``HxWx3`` ``float32`` in ``[0, 1]``.

    Args:
        path: image file (PNG, JPEG, ... anything PIL reads).
        background: ``(r, g, b)`` in ``[0, 1]`` to composite an alpha channel on; ``None`` drops alpha.

    Raises:
        SceneError: naming ``path`` when it is missing, unreadable or truncated.
    """
    path = Path(path)
    with _open(path) as im:
        try:
            arr = _to_float(im, path)
        except (OSError, ValueError, SyntaxError) as e:
            if isinstance(e, SceneError):
                raise
            raise SceneError(f"{path}: cannot decode image ({type(e).__name__}: {e})") from e
    if arr.shape[-1] == 4:
        rgb, alpha = arr[..., :3], arr[..., 3:]
        if background is not None:
            bg = np.asarray(background, dtype=np.float64).reshape(1, 1, 3)
            rgb = rgb * alpha + bg * (1.0 - alpha)
        arr = rgb
    return np.clip(arr, 0.0, 1.0).astype(np.float32)


def resolve_image_folder(scene_dir: str | os.PathLike, image_folder: str | None = None) -> Path:
    """The image folder of an LLFF / COLMAP scene.

    ``image_folder`` (e.g. ``"images_8"``, relative to ``scene_dir``) wins when given. Otherwise
    ``images`` when present, else the ``images_N`` folder with the smallest ``N`` (the highest
    resolution available; intrinsics are rescaled from the size on disk either way).
    """
    scene_dir = Path(scene_dir)
    if image_folder is not None:
        folder = scene_dir / image_folder
        if not folder.is_dir():
            raise SceneError(f"{folder}: configured image_folder {image_folder!r} not found")
        return folder
    if (scene_dir / "images").is_dir():
        return scene_dir / "images"
    downscaled = []
    for p in scene_dir.glob("images_*"):
        factor = p.name.removeprefix("images_")
        if p.is_dir() and factor.isdigit():
            downscaled.append((int(factor), p))
    if not downscaled:
        raise SceneError(f"{scene_dir / 'images'}: no image folder (images or images_N) in {scene_dir}")
    return min(downscaled)[1]


def rescale_to_image(
    K: np.ndarray, size: tuple[int, int], image_size_on_disk: tuple[int, int], image: str | os.PathLike
) -> np.ndarray:
    """Intrinsics ``K`` given for an image of ``size = (w, h)`` rescaled to the image actually on disk.

    This is how downscaled folders (``images_N``) are handled: the scale comes from the real pixel
    sizes, never from the folder name. Raises :class:`SceneError` naming ``image`` when the aspect
    ratios disagree by more than one pixel (or 1 %), i.e. the image does not belong to that camera.
    """
    from san.cameras import scale_intrinsics

    (w0, h0), (w, h) = size, image_size_on_disk
    if w0 <= 0 or h0 <= 0:
        raise SceneError(f"{image}: camera size {w0:g}x{h0:g} is not positive")
    sx, sy = w / w0, h / h0
    if abs(w - w0 * sy) > max(1.0, 0.01 * w):
        raise SceneError(
            f"{image}: image is {w}x{h} but its camera is {w0:g}x{h0:g} (aspect ratios differ); wrong image folder?"
        )
    return scale_intrinsics(K, sx, sy)
