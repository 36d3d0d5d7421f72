"""Stand-ins for the session's three parts, built on small synthetic meshes.

* A *mesh renderer*: ``render_fn`` draws a triangle mesh with the face-id z-buffer of
  :mod:`san.interaction.mesh_segmentation` (depth = distance along the ray; rgb = a colour per face).
* A *disk decoder*: ``decode_fn`` returns the disk of radius ``radius`` around each positive click,
  minus the disks around negative clicks, and records every call.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from san.cameras import intrinsics_matrix, look_at
from san.interaction.mesh_segmentation import rasterize_faces


def square(size: float, z: float, centre=(0.0, 0.0), subdivisions: int = 0) -> trimesh.Trimesh:
    """Axis-aligned square in the plane ``z``, facing ``+z``, split into triangles."""
    h = size / 2
    cx, cy = centre
    v = np.array([[cx - h, cy - h, z], [cx + h, cy - h, z], [cx + h, cy + h, z], [cx - h, cy + h, z]])
    mesh = trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False)
    for _ in range(subdivisions):
        mesh = mesh.subdivide()
    return mesh


class MeshRenderer:
    """``render_fn(c2w, K, w, h) -> {"rgb", "depth", "face"}`` of a mesh; counts its calls."""

    def __init__(self, mesh: trimesh.Trimesh):
        self.mesh = mesh
        self.calls = 0
        rng = np.random.default_rng(0)
        self.colours = torch.as_tensor(rng.uniform(0.1, 0.9, (len(mesh.faces) + 1, 3)), dtype=torch.float32)

    def __call__(self, c2w, K, width, height):
        self.calls += 1
        r = rasterize_faces(self.mesh.vertices, self.mesh.faces, c2w, K, width, height)
        rgb = self.colours[r.face_ids.clamp(min=-1) + 1]
        rgb[r.face_ids < 0] = 0.0
        return {"rgb": rgb, "depth": r.depth, "face": r.face_ids}


class DiskDecoder:
    """Mask = union of disks around positive clicks minus disks around negative ones."""

    def __init__(self, radius: float = 6.0):
        self.radius = radius
        self.calls = []

    def __call__(self, features, prompts, image_size):
        self.calls.append(prompts)
        H, W = image_size
        ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
        mask = torch.zeros(H, W, dtype=torch.bool)
        for (x, y), lab in zip(prompts.points.tolist(), prompts.labels.tolist()):
            disk = (xs - x) ** 2 + (ys - y) ** 2 <= self.radius**2
            mask = mask | disk if lab == 1 else mask
        for (x, y), lab in zip(prompts.points.tolist(), prompts.labels.tolist()):
            if lab == 0:
                mask &= ~((xs - x) ** 2 + (ys - y) ** 2 <= self.radius**2)
        if prompts.box is not None:
            x0, y0, x1, y1 = prompts.box.tolist()
            mask |= (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
        # Two candidates: the mask (score 0.9) and its complement (score 0.1).
        return torch.stack([mask, ~mask]), torch.tensor([0.9, 0.1])


def features_stub(c2w, K, width, height):
    return [torch.zeros(1, 4, 8, 8)]


def camera(eye, target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), f: float = 60.0, width: int = 64, height: int = 48):
    """``(c2w, K, width, height)`` looking from ``eye`` at ``target``."""
    return (
        look_at(np.array(eye, float), np.array(target, float), np.array(up, float)),
        intrinsics_matrix(f, f, width / 2, height / 2),
        width,
        height,
    )


@pytest.fixture
def make_square():
    return square


@pytest.fixture
def make_camera():
    return camera


@pytest.fixture
def disk_decoder():
    return DiskDecoder()


@pytest.fixture
def mesh_renderer():
    return MeshRenderer


@pytest.fixture
def features_fn():
    return features_stub
