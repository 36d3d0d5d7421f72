"""Rendering: functional volume rendering and samplers (scene spaces, proposal sampling)."""

import lazy_loader

from san.rendering.config import SamplerConfig

# Submodules load on first use of a name (PEP 562), so that importing this package, or its light
# ``config`` module, does not import torch (every Snakemake parse reads the config classes).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "samplers": ["SceneSpace", "contract", "world_to_ndc"],
        "volume": ["accumulate", "accumulation", "compute_weights", "expected_depth"],
    },
)
__all__ += ["SamplerConfig"]
