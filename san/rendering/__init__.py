"""Rendering: functional volume rendering and samplers (scene spaces, proposal sampling)."""

from san.rendering.samplers import SamplerConfig, SceneSpace, contract, world_to_ndc
from san.rendering.volume import accumulate, accumulation, compute_weights, expected_depth

__all__ = [
    "SamplerConfig",
    "SceneSpace",
    "accumulate",
    "accumulation",
    "compute_weights",
    "contract",
    "expected_depth",
    "world_to_ndc",
]
