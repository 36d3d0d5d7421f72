"""Ground-truth triangle meshes of the demo scene (trimesh), in the world frame of the poses.

They approximate the analytic surfaces that :mod:`render` ray-casts, with vertices *on* the
surfaces: the sphere is an icosphere (``mesh_subdivisions``; level 5 deviates by at most
``2.9e-4 * radius``), cylinder, cone and the ground disk are polygons of ``mesh_sections`` sides
(chord deviation ``radius * (1 - cos(pi / sections))``), the box is exact. Cylinder and cone are
closed (caps / base). The ground is a disk of ``dome_radius`` (exact: it is flat, only its rim
is a polygon). The dome (background) is an icosphere of ``dome_radius``.
"""

from __future__ import annotations

import numpy as np
import trimesh

from san.data.config import DemoSceneConfig
from san.data.demo.layout import DemoObject, demo_objects

GROUND_RING_SPACING = 0.25  # metres between the ground mesh's rings


def object_mesh(obj: DemoObject, config: DemoSceneConfig) -> trimesh.Trimesh:
    """Watertight mesh of one object in world coordinates."""
    p = obj.params
    if obj.shape == "sphere":
        mesh = trimesh.creation.icosphere(subdivisions=config.mesh_subdivisions, radius=p["radius"])
    elif obj.shape == "box":
        mesh = trimesh.creation.box(extents=p["extents"])
    elif obj.shape == "cylinder":
        shift = np.eye(4)
        shift[2, 3] = p["height"] / 2  # trimesh centres cylinders on the origin; ours stand on z = 0
        mesh = trimesh.creation.cylinder(p["radius"], p["height"], sections=config.mesh_sections, transform=shift)
    elif obj.shape == "cone":
        mesh = trimesh.creation.cone(p["radius"], p["height"], sections=config.mesh_sections)
    else:
        raise ValueError(f"unknown demo shape {obj.shape!r}")
    mesh.apply_transform(obj.local_to_world)
    return mesh


def ground_mesh(config: DemoSceneConfig) -> trimesh.Trimesh:
    """The ground disk ``z = 0`` of radius ``dome_radius`` facing ``+z``: ``mesh_sections`` sectors
    by concentric rings ``GROUND_RING_SPACING`` apart (so the faces near the objects are small and a
    crop to the region of interest keeps little else)."""
    n = config.mesh_sections
    rings = max(1, int(np.ceil(config.dome_radius / GROUND_RING_SPACING)))
    radii = np.linspace(0.0, config.dome_radius, rings + 1)[1:]
    angles = 2 * np.pi * np.arange(n) / n
    circle = np.stack([np.cos(angles), np.sin(angles), np.zeros(n)], axis=-1)
    vertices = np.concatenate([np.zeros((1, 3)), (radii[:, None, None] * circle[None]).reshape(-1, 3)])
    i = np.arange(n)
    j = (i + 1) % n
    faces = [np.stack([np.zeros(n, dtype=np.int64), 1 + i, 1 + j], axis=-1)]
    for k in range(rings - 1):
        inner, outer = 1 + k * n, 1 + (k + 1) * n
        faces.append(np.stack([inner + i, outer + i, outer + j], axis=-1))
        faces.append(np.stack([inner + i, outer + j, inner + j], axis=-1))
    return trimesh.Trimesh(vertices, np.concatenate(faces), process=False)


def dome_mesh(config: DemoSceneConfig) -> trimesh.Trimesh:
    """The background sky dome (full sphere of ``dome_radius`` at the origin, level-4 icosphere)."""
    return trimesh.creation.icosphere(subdivisions=4, radius=config.dome_radius)


def surface_meshes(config: DemoSceneConfig) -> dict[str, trimesh.Trimesh]:
    """``{name: mesh}`` of the surfaces written to ``meshes/``: every object, then ``"ground"``.
    The dome is left out (it lies outside any region of interest; :func:`dome_mesh` builds it)."""
    meshes = {obj.name: object_mesh(obj, config) for obj in demo_objects(config)}
    meshes["ground"] = ground_mesh(config)
    return meshes
