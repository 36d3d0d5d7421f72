"""Checkpoints that make long training resumable.

A checkpoint is one ``torch.save`` dict written atomically; :func:`latest_checkpoint` finds the
newest one in a folder so that a killed job resumes where it stopped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from san.utils.io import atomic_path

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


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in folder.glob("step_*.ckpt") if (m := _PATTERN.search(p.name)))
    return found[-1][1] if found else None


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # truncated or foreign file
        raise RuntimeError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from e
