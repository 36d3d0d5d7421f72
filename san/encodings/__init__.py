"""Input encodings: multiresolution hash grid (torch or tiny-cuda-nn) and spherical harmonics."""

import lazy_loader

from san.encodings.config import HashGridConfig

# Submodules load on first use of a name (PEP 562), so that importing this package, or its light
# ``config`` module, does not import torch (every Snakemake parse reads the config classes).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "hashgrid": ["TorchHashEncoding", "make_hash_encoding"],
        "sh": ["spherical_harmonics"],
    },
)
__all__ += ["HashGridConfig"]
