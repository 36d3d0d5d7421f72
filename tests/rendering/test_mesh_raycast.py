"""One surface point per ray from a triangle mesh: exact hits, fast path == reference.

Measured on the development machine (1 CPU thread, 64x64 = 4096 rays from one camera):

===============================  ============  ==========================
mesh                             binned        reference (brute force)
===============================  ============  ==========================
icosphere + box, 20 492 faces    0.03-0.05 s   14-28 s
icosphere, 327 680 faces         0.25-0.6 s    ~5.2 s per 64 rays (~340 s)
===============================  ============  ==========================

trimesh's intersectors are not an option here: ``embree`` is not installed and
``trimesh.ray.ray_triangle`` needs ``rtree``, which ``san`` does not depend on.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from san.cameras import RayBundle, generate_rays, intrinsics_matrix, look_at
from san.rendering.mesh_raycast import (
    load_mesh,
    ray_triangle_depth,
    raycast_mesh,
    raycast_mesh_binned,
    raycast_mesh_reference,
    shares_origin,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # many tiny tensor ops


def camera_rays(eye, target, width=32, height=24, f=30.0) -> RayBundle:
    c2w = torch.tensor(
        look_at(np.array(eye, float), np.array(target, float), np.array([0.0, 0.0, 1.0])), dtype=torch.float32
    )
    K = torch.tensor(intrinsics_matrix(f, f, width / 2, height / 2), dtype=torch.float32)
    return generate_rays(c2w, K, width, height)


def quad() -> tuple[torch.Tensor, torch.Tensor]:
    """The square [-1, 1]^2 at z = 0 as two triangles: face 0 below the diagonal y = x, face 1 above."""
    v = torch.tensor([[-1.0, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]])
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    return v, f


def test_ray_triangle_depth_single():
    v0, v1, v2 = torch.tensor([0.0, 0, 0]), torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1, 0])
    o = torch.tensor([[0.2, 0.2, 2.0], [0.8, 0.8, 2.0], [0.2, 0.2, -3.0]])
    d = torch.tensor([[0.0, 0, -1], [0.0, 0, -1], [0.0, 0, -1]])
    t = ray_triangle_depth(o, d, v0, v1, v2)
    assert float(t[0]) == pytest.approx(2.0)
    assert math.isinf(float(t[1]))  # outside the triangle
    assert math.isinf(float(t[2]))  # triangle behind the ray


def test_two_triangles_hit_the_right_face():
    v, f = quad()
    # Rays straight down from above, through points on either side of the diagonal and outside.
    xy = torch.tensor([[0.5, -0.5], [-0.5, 0.5], [0.9, -0.1], [-0.1, 0.9], [1.5, 0.0]])
    origins = torch.cat([xy, torch.full((5, 1), 3.0)], 1)
    dirs = torch.tensor([[0.0, 0.0, -1.0]]).expand(5, 3)
    rays = RayBundle(origins, dirs.contiguous())
    for hits in (raycast_mesh_reference(v, f, rays), raycast_mesh(v, f, rays)):
        assert hits.face.tolist() == [0, 1, 0, 1, -1]
        torch.testing.assert_close(hits.depth[:4], torch.full((4,), 3.0))
        assert math.isinf(float(hits.depth[4]))
    # From one camera above the quad (fast path): every hit lies on z = 0, the face matches the side.
    rays = camera_rays([0.1, 0.2, 3.0], [0.1, 0.2, 0.0])
    assert shares_origin(rays)
    hits = raycast_mesh_binned(v, f, rays)
    p = hits.points(rays)[hits.hit]
    assert hits.hit.float().mean() > 0.5
    assert float(p[:, 2].abs().max()) < 1e-5
    side = (p[:, 1] > p[:, 0]).long()
    clear = (p[:, 1] - p[:, 0]).abs() > 1e-4
    assert torch.equal(hits.face[hits.hit][clear], side[clear])


def test_box_faces_and_depth():
    box = trimesh.creation.box(extents=[1.0, 1.0, 1.0])
    v = torch.tensor(box.vertices, dtype=torch.float32)
    f = torch.tensor(box.faces)
    normals = torch.tensor(box.face_normals, dtype=torch.float32)
    # Camera on +x looking at the centre: the first hits are on the +x face at distance 3 - 0.5 on axis.
    rays = camera_rays([3.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    hits = raycast_mesh(v, f, rays)
    assert hits.hit.any()
    assert torch.all(normals[hits.face[hits.hit]][:, 0] > 0.99)
    # Every hit lies on the plane x = 0.5, at distance 2.5 / |d_x| along its ray.
    d = rays.directions[hits.hit]
    torch.testing.assert_close(hits.depth[hits.hit], 2.5 / d[:, 0].abs())


@pytest.mark.parametrize("eye", [[0.0, -4.0, 0.5], [0.3, 0.2, 0.1], [3.0, 2.0, -3.0]])
def test_binned_matches_reference(eye):
    sphere = trimesh.creation.icosphere(subdivisions=3)
    box = trimesh.creation.box(extents=[0.5, 0.5, 0.5])
    box.apply_translation([1.2, 0, 0])
    mesh = trimesh.util.concatenate([sphere, box])
    v = torch.tensor(mesh.vertices, dtype=torch.float32)
    f = torch.tensor(mesh.faces)
    rays = camera_rays(eye, [0.5, 0.0, 0.0], 40, 30, 25.0)  # [0.3, 0.2, 0.1] is inside the sphere
    a = raycast_mesh_binned(v, f, rays)
    b = raycast_mesh_reference(v, f, rays)
    assert torch.equal(a.hit, b.hit)
    assert (a.face == b.face).float().mean() > 0.999
    torch.testing.assert_close(a.depth[a.hit], b.depth[b.hit])
    # A random pixel subset (what a training step renders) gives the same hits.
    sel = torch.randperm(len(rays), generator=torch.Generator().manual_seed(0))[:100]
    c = raycast_mesh_binned(v, f, rays[sel])
    torch.testing.assert_close(c.depth, a.depth[sel])


def test_rays_from_different_origins_fall_back_to_reference():
    v, f = quad()
    rays = RayBundle(torch.tensor([[0.5, -0.5, 1.0], [-0.5, 0.5, 2.0]]), torch.tensor([[0.0, 0, -1], [0.0, 0, -1]]))
    assert not shares_origin(rays)
    with pytest.raises(ValueError):
        raycast_mesh_binned(v, f, rays)
    hits = raycast_mesh(v, f, rays)
    assert hits.face.tolist() == [0, 1] and hits.depth.tolist() == pytest.approx([1.0, 2.0])


def test_load_mesh_roundtrip(tmp_path):
    box = trimesh.creation.box()
    box.export(tmp_path / "box.ply")
    v, f = load_mesh(tmp_path / "box.ply")
    assert v.shape == (8, 3) and f.shape == (12, 3) and f.dtype == torch.int64


def test_demo_ground_truth_meshes_hit_the_object_seen_in_each_pixel():
    demo = pytest.importorskip("san.data.demo")
    config = demo.DemoSceneConfig()
    meshes = demo.surface_meshes(config)
    objects = {obj.name: obj.id for obj in demo.demo_objects(config)}
    ids = [objects.get(name, demo.GROUND_ID) for name in meshes]
    dome = demo.dome_mesh(config)
    parts = list(meshes.values()) + [dome]
    ids.append(demo.BACKGROUND_ID)
    face_id = torch.cat([torch.full((len(m.faces),), i) for m, i in zip(parts, ids)])
    mesh = trimesh.util.concatenate(parts)
    v, f = torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces)
    poses = demo.demo_cameras(config)
    K = demo.demo_intrinsics(config)
    s = 48 / config.width  # render at the feature resolution
    w, h = 48, int(round(config.height * s))
    Ks = torch.tensor(K, dtype=torch.float32).clone()
    Ks[:2] *= torch.tensor([[w / config.width], [h / config.height]])
    for c2w in poses[:2]:
        rays = generate_rays(torch.tensor(c2w, dtype=torch.float32), Ks, w, h)
        _, truth, _ = demo.trace_rays(rays.origins, rays.directions, config)
        hits = raycast_mesh(v, f, rays)
        assert hits.hit.all()
        got = face_id[hits.face]
        objects_px = truth >= demo.FIRST_OBJECT_ID
        assert objects_px.sum() > 20
        agree = (got[objects_px] == truth[objects_px]).float().mean()
        assert agree > 0.95, f"only {agree:.3f} of object pixels hit their own mesh"
        assert (got == truth).float().mean() > 0.95
