"""Feature-imitation losses (paper Sec. 4.2, Eq. 8-11) and the quality metrics reported with them.

Every function takes feature maps flattened to ``s x C`` (``s`` pixels, ``C`` channels): a training
step compares only the pixels it rendered, and the cross-scale term is well defined on any pixel
subset of each map (its entries are a sub-matrix of the full similarity map).

* :func:`feature_mse` is Eq. 8 up to a constant: the mean over pixels *and channels* of the squared
  error (``torch.nn.MSELoss``), i.e. Eq. 8's ``1/N sum ||F - F_hat||^2`` divided by ``C``. This is the
  scale of the paper's reported "feature MSE" (0.0026 for SAM).
* :func:`similarity_map` / :func:`correlation_loss` implement Eq. 9-11. The paper writes
  ``S_ij in R^{C x s_i x s_j}`` but calls it a *cosine* similarity, which is a scalar per pixel pair;
  ``san`` uses the well-defined reading ``S_ij = normalize(F_i) normalize(F_j)^T`` of shape
  ``s_i x s_j``: the cosine similarity between every channel vector of map ``i`` and every channel
  vector of map ``j``. When the maps' channel counts differ, the wider map is first multiplied by a
  fixed semi-orthogonal matrix (seeded, not learned, :func:`channel_projection`) down to the narrower
  width; predictions and targets use the same matrix, so the loss still compares like with like.
"""

from __future__ import annotations

import functools
from typing import Sequence

import torch
from torch.nn import functional as F


def feature_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over pixels and channels (Eq. 8 divided by ``C``).

    Args:
        pred: ``s x C`` imitated features.
        target: ``s x C`` teacher features.

    Returns:
        Scalar tensor.
    """
    return F.mse_loss(pred, target)


def mean_cosine(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean per-pixel cosine similarity of two ``s x C`` feature sets (scalar)."""
    return F.cosine_similarity(pred, target, dim=-1, eps=eps).mean()


@functools.lru_cache(maxsize=16)
def _projection_cpu(c_from: int, c_to: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 7919 * c_from + c_to)
    a = torch.randn(c_from, c_to, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(a)  # c_from x c_to, orthonormal columns
    return q.float()


def channel_projection(c_from: int, c_to: int, device=None, seed: int = 0) -> torch.Tensor:
    """A fixed ``c_from x c_to`` matrix with orthonormal columns (``c_to <= c_from``), seeded.

    Used only to compare maps of different widths in :func:`similarity_map`.
    """
    if c_to > c_from:
        raise ValueError(f"channel_projection: cannot project {c_from} channels up to {c_to}")
    return _projection_cpu(int(c_from), int(c_to), int(seed)).to(device)


def similarity_map(fi: torch.Tensor, fj: torch.Tensor, eps: float = 1e-8, seed: int = 0) -> torch.Tensor:
    """Cross-scale cosine similarity map ``S_ij`` (Eq. 9-11).

    Args:
        fi: ``s_i x C_i`` features of map ``i`` (any pixel subset).
        fj: ``s_j x C_j`` features of map ``j``.

    Returns:
        ``s_i x s_j`` with ``S[a, b] = cos(fi[a], fj[b])``. Maps of different widths are projected
        to the narrower width first (:func:`channel_projection`).
    """
    ci, cj = fi.shape[-1], fj.shape[-1]
    if ci > cj:
        fi = fi @ channel_projection(ci, cj, fi.device, seed)
    elif cj > ci:
        fj = fj @ channel_projection(cj, ci, fj.device, seed)
    return F.normalize(fi, dim=-1, eps=eps) @ F.normalize(fj, dim=-1, eps=eps).T


def correlation_loss(preds: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]) -> torch.Tensor:
    """Eq. 11: ``sum_i sum_{j>i} MSE(S_hat_ij, S_ij)``; zero for a single map.

    Args:
        preds: per map ``s_i x C_i`` imitated features.
        targets: per map ``s_i x C_i`` teacher features at the same pixels.
    """
    if len(preds) != len(targets):
        raise ValueError(f"correlation_loss: {len(preds)} predicted maps but {len(targets)} targets")
    total = preds[0].new_zeros(())
    for i in range(len(preds)):
        for j in range(i + 1, len(preds)):
            with torch.no_grad():
                s = similarity_map(targets[i], targets[j])
            total = total + F.mse_loss(similarity_map(preds[i], preds[j]), s)
    return total


def imitation_loss(
    preds: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    correlation_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 9-10 (Eq. 8 for one map): ``sum_i MSE(F_hat_i, F_i) + w * L_cross``.

    Returns:
        ``(loss, metrics)`` with metrics ``mse`` (sum over maps), ``corr`` (cross term, unweighted)
        and ``cosine`` (mean over maps of the mean per-pixel cosine similarity).
    """
    mse = sum((feature_mse(p, t) for p, t in zip(preds, targets)), preds[0].new_zeros(()))
    loss = mse
    corr = preds[0].new_zeros(())
    if correlation_weight > 0 and len(preds) > 1:
        corr = correlation_loss(preds, targets)
        loss = loss + correlation_weight * corr
    with torch.no_grad():
        cos = sum(float(mean_cosine(p, t)) for p, t in zip(preds, targets)) / len(preds)
    return loss, {"mse": float(mse.detach()), "corr": float(corr.detach()), "cosine": cos}
