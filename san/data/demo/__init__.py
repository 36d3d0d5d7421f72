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

from san.data.demo.layout import (
    BACKGROUND_ID,
    FIRST_OBJECT_ID,
    GROUND_ID,
    DemoObject,
    DemoSceneConfig,
    demo_cameras,
    demo_intrinsics,
    demo_objects,
    region_of_interest,
    view_name,
)
from san.data.demo.meshes import dome_mesh, ground_mesh, object_mesh, surface_meshes
from san.data.demo.render import render_demo_view, shade_rays, trace_rays
from san.data.demo.write import make_demo_scene

__all__ = [
    "BACKGROUND_ID",
    "FIRST_OBJECT_ID",
    "GROUND_ID",
    "DemoObject",
    "DemoSceneConfig",
    "demo_cameras",
    "demo_intrinsics",
    "demo_objects",
    "dome_mesh",
    "ground_mesh",
    "make_demo_scene",
    "object_mesh",
    "region_of_interest",
    "render_demo_view",
    "shade_rays",
    "surface_meshes",
    "trace_rays",
    "view_name",
]
