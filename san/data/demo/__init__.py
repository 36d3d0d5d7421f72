"""The embedded demo scene: a procedural scene ray-cast exactly, with ground truth.

Three to four textured objects (sphere, box, cylinder, cone) on a checkered ground disk, inside a
textured sky dome at finite distance (so every pixel has a finite ground-truth depth and a NeRF
with scene contraction can represent the background). Cameras are on rings around the objects
looking at the scene centre. Conventions: :mod:`san.cameras` (OpenCV ``c2w``, pixel centres at
``+0.5``, depth = distance along the unit ray). Modules:

* :mod:`~san.data.demo.layout`: :class:`DemoSceneConfig`, the objects, light and cameras;
* :mod:`~san.data.demo.geometry`: exact ray-primitive intersections;
* :mod:`~san.data.demo.textures`: seeded procedural textures;
* :mod:`~san.data.demo.render`: :func:`render_demo_view` for any camera;
* :mod:`~san.data.demo.meshes`: ground-truth triangle meshes;
* :mod:`~san.data.demo.write`: :func:`make_demo_scene`, the output folder (layout in its docstring).
"""

import lazy_loader

from san.data.config import DemoSceneConfig

# Submodules load on first use of a name (PEP 562), so that importing this package, or its light
# ``config`` module, does not import torch (every Snakemake parse reads the config classes).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "layout": [
            "BACKGROUND_ID",
            "FIRST_OBJECT_ID",
            "GROUND_ID",
            "DemoObject",
            "demo_cameras",
            "demo_intrinsics",
            "demo_objects",
            "region_of_interest",
            "view_name",
        ],
        "meshes": ["dome_mesh", "ground_mesh", "object_mesh", "surface_meshes"],
        "render": ["render_demo_view", "shade_rays", "trace_rays"],
        "write": ["make_demo_scene"],
    },
)
__all__ += ["DemoSceneConfig"]
