"""Semantic feature imitation (paper Sec. 4): render the teacher"s backbone features from the NeRF.

Modules:

* :mod:`~san.imitation.config`: :class:`TrainImitationConfig` (``imitation:`` section, presets
  ``cpu``/``paper``), :class:`VariantConfig` and :func:`variant_config` (ablation variants);
* :mod:`~san.imitation.geometry`: feature-resolution cameras, frozen per-ray geometry (volume or
  mesh surface);
* :mod:`~san.imitation.head`: the MLP head (skip connection, LeakyReLU, final LayerNorm);
* :mod:`~san.imitation.model`: :class:`ImitationModel` (shared grid + one head per teacher map),
  ``field.pt`` save / load;
* :mod:`~san.imitation.fifo`: the FIFO view cache and the fresh-or-cached draw;
* :mod:`~san.imitation.losses`: MSE, cross-scale correlation loss, cosine metric;
* :mod:`~san.imitation.trainer`: :class:`ImitationTrainer` and :func:`make_trainer`;
* :mod:`~san.imitation.render`: :func:`render_features` for any camera;
* :mod:`~san.imitation.quality`: cosine / MSE against the teacher on held-out views.

The semantic grid itself is :class:`san.fields.semantic_field.SemanticField`; the rule is
:func:`san.pipeline.train_imitation.train_imitation`.
"""

import lazy_loader

from san.imitation.config import TrainImitationConfig, VariantConfig, imitation_config, variant_config

# Submodules load on first use of a name (PEP 562), so that importing this package, or its light
# ``config`` module, does not import torch (every Snakemake parse reads the config classes).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "model": ["ImitationModel", "load_imitation", "save_imitation"],
        "render": ["render_features"],
    },
)
__all__ += ["TrainImitationConfig", "VariantConfig", "imitation_config", "variant_config"]
