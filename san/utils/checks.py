"""Content checks shared by every stage: values that must be finite before anything is saved.

A diverged trainer or a corrupt input array gives NaN/inf quietly; saving it produces outputs that
look complete (a model file, a ``metrics.json``) but are garbage. Stages call :func:`require_finite`
on what they compute or read, with one line, and the error names the stage, what was checked and the
likely cause.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class NonFiniteError(ValueError):
    """A loss, metric or array holds NaN or infinity; the message names the stage and a likely cause."""


def _all_finite(value: Any) -> tuple[bool, str]:
    """``(finite, description)`` of a Python number, NumPy array or torch tensor."""
    if isinstance(value, (int, float)):
        return math.isfinite(value), f"{value!r}"
    try:
        import torch

        if isinstance(value, torch.Tensor):
            t = value.detach()
            if t.is_floating_point() or t.is_complex():
                finite = bool(torch.isfinite(t).all())
                bad = int((~torch.isfinite(t)).sum()) if not finite else 0
                return finite, (f"{float(t):.6g}" if t.numel() == 1 else f"{bad} of {t.numel()} values non-finite")
            return True, ""
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    arr = np.asarray(value)
    if arr.dtype.kind not in "fc":
        return True, ""
    finite_mask = np.isfinite(arr)
    if finite_mask.all():
        return True, ""
    return False, (
        f"{arr.item()!r}" if arr.size == 1 else f"{int((~finite_mask).sum())} of {arr.size} values non-finite"
    )


def require_finite(value: Any, *, stage: str, what: str, hint: str = "") -> None:
    """Raise :class:`NonFiniteError` when ``value`` (number, array or tensor) holds NaN or infinity.

    Args:
        value: a Python float, ``np.ndarray`` or ``torch.Tensor`` (any shape).
        stage: the rule or stage name (``"train_nerf"``), first word of the message.
        what: what was checked (``"loss at step 12"``, ``"features/0 of view 3 in X.h5"``).
        hint: the likely cause and what to do.

    Cost: one reduction over ``value`` (and a device sync for a CUDA tensor).
    """
    finite, description = _all_finite(value)
    if finite:
        return
    message = f"{stage}: {what} is not finite ({description})"
    raise NonFiniteError(message + (f"; {hint}" if hint else ""))
