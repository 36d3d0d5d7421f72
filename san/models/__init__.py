"""Models: the scene NeRF (sampler + fields + renderer) and its file format."""

import lazy_loader

from san.models.config import NeRFConfig

# Submodules load on first use of a name (PEP 562), so that importing this package, or its light
# ``config`` module, does not import torch (every Snakemake parse reads the config classes).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "nerf": ["NeRFModel", "RenderOutput", "load_nerf", "save_nerf"],
    },
)
__all__ += ["NeRFConfig"]
