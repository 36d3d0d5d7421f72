"""Drawing of segmentation results: the mask PNG and the overlay (tinted mask, clicks, box).

Colours are shared by ``san segment``'s overlays and the viewer's click markers.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from san.utils.io import atomic_path

if TYPE_CHECKING:
    from san.interaction.session import SegmentationResult

POSITIVE_COLOUR = (40, 220, 60)
NEGATIVE_COLOUR = (230, 40, 40)
MASK_TINT = np.array([30, 144, 255], dtype=np.float32)


def _numpy(x) -> np.ndarray:
    """A torch tensor (any device) or array-like as a numpy array."""
    import torch

    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def write_mask_png(path: str | os.PathLike, mask) -> None:
    """``HxW`` bool mask -> 8-bit PNG (255 inside)."""
    from PIL import Image

    m = _numpy(mask).astype(bool)
    with atomic_path(path) as tmp:
        Image.fromarray((m * 255).astype(np.uint8), mode="L").save(tmp)


def overlay_image(rgb, mask, points=None, labels=None, box=None) -> np.ndarray:
    """``HxWx3`` uint8: ``rgb`` (float in [0, 1]) with the mask tinted, clicks and box drawn."""
    from PIL import Image, ImageDraw

    img = np.clip(_numpy(rgb).astype(np.float32), 0, 1) * 255
    m = _numpy(mask).astype(bool)
    img[m] = 0.45 * img[m] + 0.55 * MASK_TINT
    pil = Image.fromarray(img.astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    r = max(2, round(min(pil.size) / 80))
    if points is not None:
        for (x, y), lab in zip(np.asarray(points).reshape(-1, 2), np.asarray(labels).reshape(-1)):
            colour = POSITIVE_COLOUR if int(lab) == 1 else NEGATIVE_COLOUR
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=(255, 255, 255))
    if box is not None:
        draw.rectangle([float(v) for v in np.asarray(box).reshape(4)], outline=(255, 220, 0), width=max(1, r // 2))
    return np.asarray(pil)


def write_overlay_png(path: str | os.PathLike, rgb, result: SegmentationResult) -> None:
    from PIL import Image

    p = result.prompts
    arr = overlay_image(rgb, result.mask, p.points.numpy(), p.labels.numpy(), None if p.box is None else p.box.numpy())
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp)
