"""Image-quality metrics on ``HxWx3`` tensors in ``[0, 1]``: PSNR and SSIM.

SSIM is the standard one (Wang et al. 2004) as NeRF papers report it: an 11x11 Gaussian window
with sigma 1.5, ``K1 = 0.01``, ``K2 = 0.03``, data range 1, 'valid' filtering (no padding), computed
per channel and averaged over pixels and channels. It equals
``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1, channel_axis=-1)`` (a test checks this).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def mse(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(torch.mean((pred.float() - target.float()) ** 2))


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """``-10 log10(MSE)`` for images in ``[0, 1]`` (any matching shapes)."""
    return -10.0 * math.log10(max(mse(pred, target), 1e-12))


def _gaussian_kernel(size: int, sigma: float, device, dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    data_range: float = 1.0,
) -> float:
    """Mean structural similarity of two ``HxWxC`` images (see the module docstring)."""
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(
            f"ssim: expected two HxWxC images of the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    x = pred.double().permute(2, 0, 1)[:, None]  # C 1 H W
    y = target.double().permute(2, 0, 1)[:, None]
    g = _gaussian_kernel(window, sigma, x.device, x.dtype)
    gx, gy = g.view(1, 1, 1, -1), g.view(1, 1, -1, 1)

    def blur(img: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(img, gx), gy)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return float(s.mean())
