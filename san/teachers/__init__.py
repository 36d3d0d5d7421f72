"""2D teachers (foundation models whose features the NeRF learns to imitate) and their registry.

Usage::

    from san.teachers import Prompts, build_teacher

    teacher = build_teacher("sam_vit_h", checkpoint="weights/sam_vit_h_4b8939.pth")
    features = teacher.encode(images)                    # images Bx3xHxW in [0, 1] -> [Bx256x64x64]
    masks, scores, _ = teacher.decode([f[0] for f in features], Prompts.click(120.5, 80.5), (H, W))

Registered names (``available_teachers()``):

=========================  =================================================================
``sam_vit_h|l|b``          segment-anything, weights from ``checkpoint`` (required)
``sam_vit_h|l|b_untrained`` the same architectures with seeded random weights (timing only)
``sam_untrained_tiny``     SAM's classes with a small ViT, seeded random weights: CPU demo/tests
``sam_tiny_procedural``    SAM's classes, small, TRAINED HERE on procedural scenes (not SAM);
                           shipped weights (``san/teachers/weights``), SHA-256 checked
``toy_multiscale_untrained`` TOY two-map conv net for multi-scale tests, not a segmenter
``sam3``                   SAM 3 (official ``sam3`` package, extra ``san[sam3]``), weights from
                           ``checkpoint`` (``sam3.pt``, required); text and point/box prompts
``sam3_untrained``         SAM 3's full-size architecture, seeded random weights (timing only)
``sam3_untrained_small``   SAM 3's classes at small sizes, seeded random weights: CPU demo/tests
=========================  =================================================================

SAM 3 teachers return six feature maps (two feature pyramids, :mod:`san.teachers.sam3`) and
decode text prompts (``Prompts.from_text``) as well as clicks and boxes.

``info.kind`` says what the weights are: ``sam`` (Meta's released weights), ``procedural``
(trained by this project on :mod:`san.data.procedural` scenes) or ``untrained``. Every teacher
with random weights has ``untrained`` in its name and ``info.untrained = True``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import lazy_loader

if TYPE_CHECKING:
    from san.teachers.base import Teacher


class TeacherError(ValueError):
    """A teacher that cannot be built or used as asked; the message names the file or the name."""


TOY_NAME = "toy_multiscale_untrained"
"""Registry name of :class:`san.teachers.toy.ToyMultiScaleTeacher`."""

# The teachers themselves (torch; segment-anything and torchvision for SAM) load on first use of a
# name (PEP 562), so that the registry, TeacherConfig and the preflight checks, which every
# Snakemake parse reads, import no torch.
__getattr__, __dir__, _LAZY = lazy_loader.attach(
    __name__,
    submod_attrs={
        "base": ["Decoded", "Prompts", "Teacher", "TeacherInfo", "TeacherInput"],
        "sam": ["SamTeacher"],
        "toy": ["ToyMultiScaleTeacher"],
    },
)


def build_sam_teacher(arch, checkpoint=None, untrained=False, batch_size=1):
    """See :func:`san.teachers.sam.build_sam_teacher` (imported on first use)."""
    from san.teachers.sam import build_sam_teacher as build

    return build(arch, checkpoint, untrained=untrained, batch_size=batch_size)


__all__ = [
    "Decoded",
    "Prompts",
    "SamTeacher",
    "Teacher",
    "TeacherConfig",
    "TeacherError",
    "TeacherInfo",
    "TeacherInput",
    "ToyMultiScaleTeacher",
    "available_teachers",
    "build_teacher",
    "register_teacher",
    "teacher_from_config",
    "teacher_supports_text",
]

Builder = Callable[[str | None, int], "Teacher"]
"""``builder(checkpoint, batch_size) -> Teacher`` (on the CPU)."""

_REGISTRY: dict[str, Builder] = {}
_TEXT: set[str] = set()


def register_teacher(name: str, builder: Builder, *, text: bool = False) -> None:
    """Make ``build_teacher(name, ...)`` call ``builder(checkpoint, batch_size)``.

    ``text``: the teacher it builds decodes text prompts (its class sets
    :attr:`san.teachers.base.Teacher.supports_text`); recorded here so that the DAG build can check
    text prompts against the teacher without importing torch (:func:`teacher_supports_text`).
    """
    if name in _REGISTRY:
        raise TeacherError(f"teacher {name!r} is already registered")
    _REGISTRY[name] = builder
    if text:
        _TEXT.add(name)


def available_teachers() -> list[str]:
    return sorted(_REGISTRY)


def teacher_supports_text(name: str) -> bool:
    """Whether the registered teacher ``name`` decodes text prompts (SAM 3), without building it.

    Raises:
        TeacherError: ``name`` is not registered.
    """
    if name not in _REGISTRY:
        raise TeacherError(f"unknown teacher {name!r} (available: {', '.join(available_teachers())})")
    return name in _TEXT


def _no_checkpoint(name: str, checkpoint: str | None) -> None:
    if checkpoint is not None:
        raise TeacherError(f"teacher {name!r} is untrained and takes no checkpoint (got {checkpoint})")


def _procedural(checkpoint: str | None, batch_size: int) -> Teacher:
    from san.teachers.procedural import build_procedural_teacher

    return build_procedural_teacher(checkpoint, batch_size)


def _toy(checkpoint: str | None, batch_size: int) -> Teacher:
    from san.teachers.toy import ToyMultiScaleTeacher

    _no_checkpoint(TOY_NAME, checkpoint)
    return ToyMultiScaleTeacher(batch_size=batch_size)


for _arch in ("vit_h", "vit_l", "vit_b"):
    register_teacher(f"sam_{_arch}", lambda ckpt, bs, a=_arch: build_sam_teacher(a, ckpt, batch_size=bs))
    register_teacher(
        f"sam_{_arch}_untrained", lambda ckpt, bs, a=_arch: build_sam_teacher(a, ckpt, untrained=True, batch_size=bs)
    )
register_teacher("sam_untrained_tiny", lambda ckpt, bs: build_sam_teacher("tiny", ckpt, untrained=True, batch_size=bs))
register_teacher("sam_tiny_procedural", _procedural)
register_teacher(TOY_NAME, _toy)


def _sam3(name: str) -> Builder:
    def build(checkpoint: str | None, batch_size: int) -> Teacher:
        from san.teachers.sam3 import build_sam3_teacher  # imports the optional `sam3` package

        return build_sam3_teacher(name, checkpoint, batch_size)

    return build


for _name in ("sam3", "sam3_untrained", "sam3_untrained_small"):
    register_teacher(_name, _sam3(_name), text=True)


def build_teacher(
    name: str,
    checkpoint: str | os.PathLike | None = None,
    device: str = "auto",
    batch_size: int = 1,
) -> Teacher:
    """Build the registered teacher ``name`` on ``device`` (``"auto"``: CUDA if present).

    Args:
        name: one of :func:`available_teachers`.
        checkpoint: weights file for trained teachers (its SHA-256 lands in ``teacher.info``).
        device: ``"auto" | "cpu" | "cuda[:N]"``.
        batch_size: most images per backbone pass in :meth:`Teacher.encode`.
    """
    from san.utils.device import resolve_device

    if name not in _REGISTRY:
        raise TeacherError(f"unknown teacher {name!r} (available: {', '.join(available_teachers())})")
    teacher = _REGISTRY[name](None if checkpoint is None else str(checkpoint), batch_size)
    return teacher.to(resolve_device(device))


@dataclass(frozen=True)
class TeacherConfig:
    """``teacher:`` section of ``config.yaml``.

    Attributes:
        name: registry name (see :func:`available_teachers`).
        checkpoint: path of the weights file; required by ``sam_vit_h|l|b``, refused by untrained
            ones; optional for ``sam_tiny_procedural`` (``null``: the shipped weights).
        batch_size: most images per backbone pass (bounds GPU memory).
    """

    name: str = "sam_untrained_tiny"
    checkpoint: str | None = None
    batch_size: int = 1


def teacher_from_config(config: TeacherConfig, device: str = "auto") -> Teacher:
    return build_teacher(config.name, config.checkpoint, device, config.batch_size)
