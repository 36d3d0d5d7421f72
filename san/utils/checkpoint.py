"""Checkpoints that make long training resumable.

A checkpoint is one ``torch.save`` dict written atomically; :func:`latest_checkpoint` finds the
newest *readable* one in a folder so that a killed job resumes where it stopped. A newest checkpoint
that is corrupt (a disk error, a copy cut short) does not fail every rerun: it is skipped with a
warning naming it, and the previous valid one is used.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from pathlib import Path

import torch

from san.utils.io import atomic_path

log = logging.getLogger("san")


class CheckpointError(RuntimeError, ValueError):
    """A checkpoint file that cannot be read; the message names it."""


_PATTERN = re.compile(r"step_(\d+)\.ckpt$")


def save_checkpoint(folder: str | os.PathLike, step: int, state: dict, keep: int = 2) -> Path:
    """Write ``folder/step_{step:07d}.ckpt`` atomically and keep only the newest ``keep``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:07d}.ckpt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    # Numeric order (names sort wrongly past 9,999,999 steps); ``keep`` < 1 still keeps this one.
    found = sorted((int(m.group(1)), p) for p in folder.glob("step_*.ckpt") if (m := _PATTERN.search(p.name)))
    for _, old in found[: max(len(found) - max(keep, 1), 0)]:
        old.unlink()
    return path


def checkpoint_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a readable ``torch.save`` archive, or ``None`` when it is.

    Reads the zip directory and checks every member's CRC (one pass over the file, no unpickling).
    """
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        return f"{type(e).__name__}: {e}"
    return f"member {bad} fails its CRC check" if bad is not None else None


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The newest readable ``step_*.ckpt`` in ``folder`` (``None``: none). Unreadable newer ones are
    skipped with a warning naming each (they are left in place for inspection)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in folder.glob("step_*.ckpt") if (m := _PATTERN.search(p.name)))
    for _, path in reversed(found):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        log.warning("checkpoint %s is corrupt (%s); falling back to the previous one", path, problem)
    return None


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """``torch.load`` of a checkpoint; :class:`CheckpointError` naming ``path`` when unreadable."""
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # truncated or foreign file
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from e
