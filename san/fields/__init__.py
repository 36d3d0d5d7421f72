"""Fields: functions of grid-domain positions (and directions) -> density, colour."""

import lazy_loader

from san.fields.config import NeRFFieldConfig, ProposalFieldConfig

# Submodules load on first use of a name (PEP 562), so that importing this package, or its light
# ``config`` module, does not import torch (every Snakemake parse reads the config classes).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "nerf_field": ["NeRFField", "ProposalField", "trunc_exp"],
    },
)
__all__ += ["NeRFFieldConfig", "ProposalFieldConfig"]
