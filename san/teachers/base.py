"""The model-agnostic teacher API: what the feature cache, the imitation stage and the interactive
session need from a 2D foundation model, and nothing more.

A :class:`Teacher` has two halves, mirroring segment-anything:

* ``encode(images Bx3xHxW float in [0, 1]) -> list[Tensor BxCxhxw]``, the expensive backbone that
  feature imitation replaces. It returns a *list* of feature maps (SAM: one ``256x64x64`` map; a
  multi-scale teacher: several) so that every later stage is multi-scale ready.
* ``decode(features, prompts, image_size) -> Decoded(masks, scores, low_res_logits)``, the cheap
  head that turns one view's features plus prompts into masks at the original image size. It takes
  teacher features or imitated (rendered) ones alike.

Geometry of the input (SAM's convention, shared by every teacher here): the image is resized so
its longest side is ``info.input_size`` (``ResizeLongestSide``), then zero-padded at the bottom and
right to ``input_size x input_size``. A feature map of size ``h x w`` therefore covers the padded
square; only its top-left ``valid_hw = (ceil(h * H' / input_size), ceil(w * W' / input_size))``
cells see the image, where ``H' x W'`` is the resized image size. :meth:`Teacher.valid_hw` computes
it; the feature cache stores it per view.

Prompts use :mod:`san.cameras`' pixel convention: ``(x, y)`` in pixels of the *original* image,
pixel ``(0, 0)``'s centre at ``(0.5, 0.5)``.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from san.teachers import TeacherError

TEACHER_KINDS = ("sam", "procedural", "untrained")
"""What a teacher's weights are; see :attr:`TeacherInfo.kind`."""

KIND_LABELS = {
    "sam": "SAM weights",
    "procedural": "trained on procedural scenes",
    "untrained": "untrained (random weights)",
}


@dataclass(frozen=True)
class TeacherInfo:
    """What a teacher is, recorded in every artifact made with it.

    Attributes:
        name: registry name, for example ``"sam_vit_h"``; names of untrained teachers contain
            ``"untrained"``.
        input_size: side of the square, padded network input (SAM: ``1024``).
        feature_shapes: one ``(C, h, w)`` per returned feature map (SAM: ``((256, 64, 64),)``).
        checkpoint: path of the weights file, or ``None`` when built without one.
        checkpoint_sha256: hex SHA-256 of that file, or ``None``.
        untrained: ``True`` when the weights are random (seeded); such a teacher's features and
            masks are meaningless and exist for tests, demos and timing only. Derived from
            ``kind`` when ``kind`` is given.
        kind: what the weights are (:data:`TEACHER_KINDS`): ``"sam"`` (Meta's released SAM
            weights), ``"procedural"`` (SAM's architecture trained by this project on its
            procedural scenes: not SAM), ``"untrained"`` (seeded random weights). ``None`` (the
            default) means ``"untrained"`` if ``untrained`` else ``"sam"``.
    """

    name: str
    input_size: int
    feature_shapes: tuple[tuple[int, int, int], ...]
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    untrained: bool = False
    kind: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "feature_shapes", tuple(tuple(int(v) for v in s) for s in self.feature_shapes))
        if not self.feature_shapes or any(len(s) != 3 for s in self.feature_shapes):
            raise TeacherError(f"teacher {self.name!r}: feature_shapes must be a non-empty list of (C, h, w)")
        kind = self.kind if self.kind is not None else ("untrained" if self.untrained else "sam")
        if kind not in TEACHER_KINDS:
            raise TeacherError(f"teacher {self.name!r}: kind must be one of {', '.join(TEACHER_KINDS)}, got {kind!r}")
        if self.kind is not None and self.untrained and kind != "untrained":
            raise TeacherError(f"teacher {self.name!r}: untrained=True contradicts kind {kind!r}")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "untrained", kind == "untrained")
        if self.untrained and "untrained" not in self.name:
            raise TeacherError(f"teacher {self.name!r}: untrained teachers must say so in their name")

    @property
    def label(self) -> str:
        """Human-readable provenance for captions, titles and the viewer: ``"SAM weights"``,
        ``"trained on procedural scenes"`` or ``"untrained (random weights)"``."""
        return KIND_LABELS[self.kind]


def _as_tensor(x, dtype: torch.dtype) -> torch.Tensor:
    return x.detach().to(dtype) if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=dtype)


@dataclass(frozen=True)
class Prompts:
    """Prompts for one view, in the original image's pixels.

    Attributes:
        points: ``Nx2`` float ``(x, y)`` in pixels (pixel centres at ``+0.5``); ``N`` may be 0.
        labels: ``N`` int, ``1`` for a positive (foreground) click, ``0`` for a negative one.
        box: optional ``4`` float ``(x0, y0, x1, y1)`` in pixels, top-left and bottom-right corners.
        text: optional text (concept) prompt, for teachers with a text head
            (:attr:`Teacher.supports_text`, e.g. SAM 3); given alone, without points or a box.
    """

    points: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 2))
    labels: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    box: torch.Tensor | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        points = _as_tensor(self.points, torch.float32).reshape(-1, 2) if len(self.points) else torch.zeros(0, 2)
        labels = _as_tensor(self.labels, torch.int64).reshape(-1)
        if points.shape[0] != labels.shape[0]:
            raise TeacherError(f"Prompts: {points.shape[0]} points but {labels.shape[0]} labels")
        if labels.numel() and not bool(((labels == 0) | (labels == 1)).all()):
            raise TeacherError(f"Prompts: labels must be 1 (positive) or 0 (negative), got {labels.tolist()}")
        box = None
        if self.box is not None:
            box = _as_tensor(self.box, torch.float32).reshape(-1)
            if box.numel() != 4:
                raise TeacherError(f"Prompts: box must be (x0, y0, x1, y1), got {box.numel()} values")
        text = self.text
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise TeacherError(f"Prompts: text must be a non-empty string, got {text!r}")
            text = text.strip()
        if points.shape[0] == 0 and box is None and text is None:
            raise TeacherError("Prompts: give at least one point, a box or a text")
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "box", box)

    @classmethod
    def click(cls, x: float, y: float, positive: bool = True) -> "Prompts":
        """One click at ``(x, y)`` pixels."""
        return cls(torch.tensor([[x, y]], dtype=torch.float32), torch.tensor([int(positive)]))

    @classmethod
    def from_text(cls, text: str) -> "Prompts":
        """A text (concept) prompt, e.g. ``"yellow bulldozer"``."""
        return cls(text=text)

    @classmethod
    def from_box(cls, x0: float, y0: float, x1: float, y1: float) -> "Prompts":
        return cls(box=torch.tensor([x0, y0, x1, y1], dtype=torch.float32))


class Decoded(NamedTuple):
    """Output of :meth:`Teacher.decode` for one view.

    Attributes:
        masks: ``KxHxW`` bool at the original image size (``K = 1``, or the teacher's number of
            candidate masks with ``multimask_output=True``).
        scores: ``K`` predicted mask quality.
        low_res_logits: ``Kxh'xw'`` mask logits before upsampling (SAM: ``256x256`` over the padded
            input); can be fed back as ``mask_input``.
    """

    masks: torch.Tensor
    scores: torch.Tensor
    low_res_logits: torch.Tensor


class TeacherInput(NamedTuple):
    """A preprocessed batch.

    Attributes:
        images: ``Bx3xSxS`` normalised, padded network input (``S = info.input_size``).
        original_hw: ``(H, W)`` of the images given to :meth:`Teacher.preprocess`.
        input_hw: ``(H', W')`` after resizing the longest side to ``S``, before padding.
        valid_hw: per feature map, the ``(h, w)`` top-left cells that cover the image.
    """

    images: torch.Tensor
    original_hw: tuple[int, int]
    input_hw: tuple[int, int]
    valid_hw: list[tuple[int, int]]


def resized_hw(image_hw: Sequence[int], input_size: int) -> tuple[int, int]:
    """``(H', W')`` of an ``(H, W)`` image once its longest side is ``input_size`` (SAM's rounding)."""
    from segment_anything.utils.transforms import ResizeLongestSide

    return ResizeLongestSide.get_preprocess_shape(int(image_hw[0]), int(image_hw[1]), int(input_size))


def valid_feature_hw(image_hw: Sequence[int], input_size: int, feature_hw: Sequence[int]) -> tuple[int, int]:
    """Top-left ``(h, w)`` cells of an ``h x w`` feature map over the padded input that see the image."""
    rh, rw = resized_hw(image_hw, input_size)
    return math.ceil(rh * feature_hw[0] / input_size), math.ceil(rw * feature_hw[1] / input_size)


class Teacher(nn.Module, abc.ABC):
    """Base class of every teacher: SAM-style preprocessing, batched :meth:`encode`, :meth:`decode`.

    Subclasses implement :meth:`embed` (padded, normalised input -> feature maps) and
    :meth:`decode`. Weights are frozen; ``encode`` and ``decode`` run without gradients.

    Args:
        info: what this teacher is.
        pixel_mean, pixel_std: per-channel normalisation on the 0-255 scale.
        batch_size: most images per backbone pass; :meth:`encode` splits larger batches.

    Attributes:
        supports_text: the teacher's :meth:`decode` takes text prompts (:attr:`Prompts.text`).
    """

    supports_text: bool = False

    def __init__(
        self,
        info: TeacherInfo,
        pixel_mean: Sequence[float] = (123.675, 116.28, 103.53),
        pixel_std: Sequence[float] = (58.395, 57.12, 57.375),
        batch_size: int = 1,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise TeacherError(f"teacher {info.name!r}: batch_size must be >= 1, got {batch_size}")
        self.info = info
        self.batch_size = int(batch_size)
        from segment_anything.utils.transforms import ResizeLongestSide

        self.transform = ResizeLongestSide(info.input_size)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1), False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def valid_hw(self, image_hw: Sequence[int]) -> list[tuple[int, int]]:
        """Per feature map, the top-left ``(h, w)`` cells that cover an ``(H, W)`` image."""
        return [valid_feature_hw(image_hw, self.info.input_size, s[1:]) for s in self.info.feature_shapes]

    def preprocess(self, images: torch.Tensor) -> TeacherInput:
        """Resize the longest side to ``input_size``, normalise, zero-pad bottom/right to a square.

        Args:
            images: ``Bx3xHxW`` float in ``[0, 1]`` (RGB), any device.

        Returns:
            A :class:`TeacherInput` on the teacher's device.
        """
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise TeacherError(f"teacher {self.info.name!r}: expected images Bx3xHxW, got {shape}")
        if not images.is_floating_point():
            raise TeacherError(
                f"teacher {self.info.name!r}: expected float images in [0, 1], got {images.dtype} (divide uint8 by 255)"
            )
        lo, hi = float(images.min()), float(images.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise TeacherError(f"teacher {self.info.name!r}: expected images in [0, 1], got range [{lo:.3g}, {hi:.3g}]")
        h, w = int(images.shape[2]), int(images.shape[3])
        size = self.info.input_size
        input_hw = resized_hw((h, w), size)
        # ResizeLongestSide.apply_image_torch reads the size from the wrong axes in segment-anything
        # 1.0 (batch and channel), so the same bilinear, antialiased resize is done here directly.
        x = images.to(self.device, torch.float32) * 255.0
        if input_hw != (h, w):
            x = F.interpolate(x, input_hw, mode="bilinear", align_corners=False, antialias=True)
        x = (x - self.pixel_mean) / self.pixel_std
        x = F.pad(x, (0, size - input_hw[1], 0, size - input_hw[0]))
        return TeacherInput(x, (h, w), input_hw, self.valid_hw((h, w)))

    @abc.abstractmethod
    def embed(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Backbone on preprocessed input ``Bx3xSxS`` -> one ``BxCxhxw`` tensor per feature map."""

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of a batch of images.

        Args:
            images: ``Bx3xHxW`` float RGB in ``[0, 1]`` (one size per batch).

        Returns:
            One ``BxCxhxw`` float32 tensor per entry of ``info.feature_shapes``, on the teacher's
            device, covering the padded square input (see :meth:`valid_hw`).
        """
        if isinstance(images, torch.Tensor) and images.dim() == 4 and images.shape[0] == 0:
            raise TeacherError(f"teacher {self.info.name!r}: encode got an empty batch")
        outputs: list[list[torch.Tensor]] = []
        for start in range(0, images.shape[0], self.batch_size):
            x = self.preprocess(images[start : start + self.batch_size]).images
            maps = self.embed(x)
            if len(maps) != len(self.info.feature_shapes):
                raise TeacherError(
                    f"teacher {self.info.name!r}: embed returned {len(maps)} maps, info says {len(self.info.feature_shapes)}"
                )
            outputs.append(maps)
        return [torch.cat([o[i] for o in outputs]).float() for i in range(len(self.info.feature_shapes))]

    def _prepare_features(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """``1xCxhxw`` or ``Cxhxw`` maps -> ``1xCxhxw`` on the device, zero-padded to the full map
        when only the valid region is given."""
        if len(features) != len(self.info.feature_shapes):
            raise TeacherError(
                f"teacher {self.info.name!r}: decode needs {len(self.info.feature_shapes)} feature map(s), got {len(features)}"
            )
        out = []
        for i, (f, (c, h, w)) in enumerate(zip(features, self.info.feature_shapes)):
            f = torch.as_tensor(f)
            if f.dim() == 4 and f.shape[0] == 1:
                f = f[0]
            if f.dim() != 3 or f.shape[0] != c or f.shape[1] > h or f.shape[2] > w:
                raise TeacherError(
                    f"teacher {self.info.name!r}: feature map {i} must be 1x{c}xhxw with h<={h}, w<={w}, got {tuple(f.shape)}"
                )
            f = F.pad(f.to(self.device, torch.float32), (0, w - f.shape[2], 0, h - f.shape[1]))
            out.append(f[None])
        return out

    def reject_text(self, prompts: Prompts) -> None:
        """Raise :class:`TeacherError` for a text prompt given to a teacher without a text head."""
        if prompts.text is not None and not self.supports_text:
            raise TeacherError(
                f"teacher {self.info.name!r} has no text head: text prompts need a SAM 3 teacher (sam3, sam3_untrained_small)"
            )

    def prompts_to_input(self, prompts: Prompts, image_size: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Map prompt points (``Nx2``) and box (``1x4``) from original pixels into the padded
        input frame, in SAM's coordinate convention (its prompt encoder adds ``0.5`` to every
        coordinate it receives, so ``0.5`` is subtracted after the exact resize)."""
        hw = (int(image_size[0]), int(image_size[1]))
        points = self.transform.apply_coords_torch(prompts.points.to(self.device), hw) - 0.5
        box = None
        if prompts.box is not None:
            box = self.transform.apply_boxes_torch(prompts.box.to(self.device)[None], hw) - 0.5
        return points, box

    @abc.abstractmethod
    def decode(
        self,
        features: Sequence[torch.Tensor],
        prompts: Prompts,
        image_size: Sequence[int],
        multimask_output: bool = False,
        mask_input: torch.Tensor | None = None,
    ) -> Decoded:
        """Masks for one view.

        Args:
            features: one map per ``info.feature_shapes`` entry, each ``1xCxhxw`` or ``Cxhxw``; a
                map covering only the valid region (smaller ``h, w``) is zero-padded.
            prompts: clicks and/or a box in the original image's pixels.
            image_size: ``(H, W)`` of the original image.
            multimask_output: return the teacher's several candidate masks instead of one.
            mask_input: optional ``1xh'xw'`` low-res logits from a previous call.

        Returns:
            :class:`Decoded` with ``KxHxW`` bool masks at the original size.
        """

    @torch.no_grad()
    def segment(self, image: torch.Tensor, prompts: Prompts, multimask_output: bool = False) -> Decoded:
        """Encode one ``3xHxW`` image in ``[0, 1]`` and decode ``prompts`` on it."""
        features = self.encode(image[None])
        return self.decode([f[0] for f in features], prompts, image.shape[-2:], multimask_output)
