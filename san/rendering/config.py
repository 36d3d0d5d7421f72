"""Configuration of the ray samplers (:mod:`san.rendering.samplers`).

Imports no torch, trimesh or h5py: every Snakemake parse reads these classes
(``san.pipeline.settings``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SamplerConfig:
    """How many samples go where.

    ``kind="proposal"``: ``proposal_samples[0]`` uniform samples feed proposal field 0, whose
    histogram gives ``proposal_samples[1]`` samples for field 1, ..., and the last histogram gives
    ``num_samples`` samples of the radiance field. ``kind="uniform"``: ``num_samples`` stratified
    uniform samples in ``s`` (no proposal fields).
    """

    kind: Literal["proposal", "uniform"] = "proposal"
    num_samples: int = 32
    proposal_samples: tuple[int, ...] = (128, 64)
    histogram_padding: float = 0.01  # added to every proposal bin before resampling
    ndc_margin: float = 0.1
