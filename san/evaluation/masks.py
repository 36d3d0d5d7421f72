"""Binary mask helpers shared by the evaluation protocols and the report's figures."""

from __future__ import annotations

import numpy as np
import torch


def as_bool_mask(m) -> np.ndarray:
    """A mask (bool / number array or tensor) as an ``HxW`` bool array (``> 0``)."""
    if isinstance(m, torch.Tensor):
        m = m.detach().cpu().numpy()
    m = np.asarray(m)
    return m if m.dtype == bool else m > 0


def resize_mask(mask, size: tuple[int, int]) -> np.ndarray:
    """``HxW`` bool mask -> ``size = (W, H)`` by nearest neighbour (pixel centres mapped exactly:
    target pixel ``i`` takes source pixel ``floor((i + 0.5) * src / dst)``)."""
    m = as_bool_mask(mask)
    w, h = int(size[0]), int(size[1])
    if m.shape == (h, w):
        return m
    ys = np.minimum(((np.arange(h) + 0.5) * m.shape[0] / h).astype(int), m.shape[0] - 1)
    xs = np.minimum(((np.arange(w) + 0.5) * m.shape[1] / w).astype(int), m.shape[1] - 1)
    return m[ys[:, None], xs[None, :]]
