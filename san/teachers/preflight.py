"""Checks of the configured teacher that run before any training (``prepare_poses``, DAG build).

A teacher's checkpoint is otherwise first opened by ``cache_features``, after the NeRF has trained
for hours. :func:`check_teacher` finds the same problems up front:

* ``open_checkpoint=False`` (cheap, at DAG build): the name is registered, and a checkpoint is given
  exactly when the teacher needs one and exists.
* ``open_checkpoint=True`` (rule ``prepare_poses``): the checkpoint is also opened and its
  architecture verified (:func:`san.teachers.sam.read_sam_checkpoint`: a text file, a truncated
  file or a ViT-B state dict given for ``sam_vit_h`` are refused with the file's name), and a file
  carrying an official name (``sam_vit_h_4b8939.pth``: the released files end in the first six hex
  digits of their digest) must have a digest with that prefix (MD5 or SHA-256), which catches
  incomplete downloads of the right size class. ``sam3`` checkpoints (``sam3.pt``) are opened and
  checked by :func:`san.teachers.sam3.read_sam3_checkpoint` (a SAM 3 state dict of the released
  layout and size) without importing the optional ``sam3`` package.

:func:`check_text_prompts` (DAG build) refuses text prompts, from the config or from the scene
sheet, for a teacher without a text head, before any job runs.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Mapping, Sequence

from san.teachers import TeacherError

_SAM_TRAINED = re.compile(r"^sam_(vit_[hlb])$")
_OFFICIAL_NAME = re.compile(r"^sam_vit_[hlb]_([0-9a-f]{6})\.pth$")


def _digests(path: Path, chunk: int = 1 << 22) -> tuple[str, str]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest()


def check_teacher(config, open_checkpoint: bool = True, memo_dir: str | os.PathLike | None = None) -> None:
    """Check the ``teacher:`` config section (:class:`san.teachers.TeacherConfig`) before training.

    With ``memo_dir``, a checkpoint that passed is remembered there by its path, size, modification
    time and teacher name, so the ``prepare_poses`` job of every scene does not reread a 2.5 GB file.

    Raises:
        TeacherError: unknown teacher name; a checkpoint missing for a trained teacher or given to an
            untrained one; a checkpoint file that is absent, unreadable, of another architecture, or
            whose digest disagrees with its official name (the message names the file).
    """
    from san.teachers import available_teachers

    name, checkpoint = config.name, config.checkpoint
    if name not in available_teachers():
        raise TeacherError(
            f"unknown teacher {name!r} (config teacher.name; available: {', '.join(available_teachers())})"
        )
    arch = m.group(1) if (m := _SAM_TRAINED.match(name)) else ("sam3" if name == "sam3" else None)
    if arch is None:
        if checkpoint is not None:
            raise TeacherError(
                f"teacher {name!r} is untrained and takes no checkpoint (got teacher.checkpoint {checkpoint})"
            )
        return
    if checkpoint is None:
        raise TeacherError(
            f"teacher {name!r} needs a checkpoint: set teacher.checkpoint to the path of its weights file"
        )
    path = Path(checkpoint)
    if not path.is_file():
        raise TeacherError(f"{path}: teacher checkpoint not found (config teacher.checkpoint)")
    if not open_checkpoint:
        return
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{name}".encode()).hexdigest()[:32]
    memo = Path(memo_dir) / f"{key}.ok" if memo_dir is not None else None
    if memo is not None and memo.is_file():
        return
    if arch == "sam3":
        from san.teachers.sam3 import read_sam3_checkpoint  # torch.load only: the sam3 package is not imported

        state = read_sam3_checkpoint(path)
    else:
        from san.teachers.sam import read_sam_checkpoint

        state = read_sam_checkpoint(path, arch)
    del state
    official = _OFFICIAL_NAME.match(path.name)
    if official:
        md5, sha = _digests(path)
        prefix = official.group(1)
        if not (md5.startswith(prefix) or sha.startswith(prefix)):
            raise TeacherError(
                f"{path}: its name says digest {prefix}... but the file's MD5 is {md5[:12]}... and SHA-256 {sha[:12]}...: "
                "an incomplete or altered download; fetch it again"
            )
    if memo is not None:
        from san.utils.io import atomic_write_text

        atomic_write_text(memo, f"{path.resolve()} checked for {name}\n")


def check_text_prompts(
    config,
    default: Sequence[str] = (),
    scenes: Mapping[str, Sequence[str]] | None = None,
    sheet: str | os.PathLike | None = None,
) -> None:
    """Check that text prompts are only given to a teacher with a text head (SAM 3), at DAG build.

    Cheap: the capability is read from the registry (:func:`san.teachers.teacher_supports_text`),
    no teacher is built. Same rule for both sources of prompts (evaluation protocol step 7): a
    non-empty list for a teacher without a text head is an error, never skipped.

    Args:
        config: the ``teacher:`` section (:class:`san.teachers.TeacherConfig`).
        default: the config's ``evaluation.text_prompts``.
        scenes: scene id -> that scene's own list (scene sheet column ``text_prompts``; empty: none).
        sheet: the scene sheet's path, named in the message.

    Raises:
        TeacherError: naming the teacher and, for the sheet's lists, the sheet and every scene that
            gives text prompts.
    """
    from san.teachers import teacher_supports_text

    if teacher_supports_text(config.name):
        return
    hint = "text prompts need a teacher with a text head (SAM 3)"
    if default:
        raise TeacherError(
            f"evaluation.text_prompts {list(default)}: teacher {config.name!r} has no text head ({hint}); "
            "set evaluation.text_prompts: []"
        )
    given = {sid: list(texts) for sid, texts in (scenes or {}).items() if len(texts)}
    if given:
        listed = "; ".join(f"scene {sid!r}: {texts}" for sid, texts in given.items())
        raise TeacherError(
            f"{sheet or 'scene sheet'}: column text_prompts gives text prompts ({listed}), but teacher "
            f"{config.name!r} has no text head ({hint}); empty the column for these scenes or use a SAM 3 teacher"
        )
