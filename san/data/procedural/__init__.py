"""A seeded family of procedural scenes with exact ground truth (generalises :mod:`san.data.demo`).

* :mod:`~san.data.procedural.scene`: :func:`sample_scene`, held-out seeds, what the family excludes;
* :mod:`~san.data.procedural.geometry`: torus and capsule intersections (the demo's others reused);
* :mod:`~san.data.procedural.render`: :func:`render_procedural_view` (RGB, ids, depth);
* :mod:`~san.data.procedural.dataset`: :func:`render_views`, parallel over processes.
"""

from san.data.procedural.dataset import RenderedView, render_scene_views, render_views, view_size
from san.data.procedural.render import render_procedural_view
from san.data.procedural.scene import (
    HELD_OUT_SEEDS,
    PATTERNS,
    SHAPES,
    ProceduralScene,
    demo_settings_excluded,
    sample_scene,
    training_seeds,
)

__all__ = [
    "HELD_OUT_SEEDS",
    "PATTERNS",
    "SHAPES",
    "ProceduralScene",
    "RenderedView",
    "demo_settings_excluded",
    "render_procedural_view",
    "render_scene_views",
    "render_views",
    "sample_scene",
    "training_seeds",
    "view_size",
]
