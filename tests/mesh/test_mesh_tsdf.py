"""TSDF fusion (:mod:`san.mesh.tsdf`): exact depth maps of known surfaces give them back within a voxel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from san.cameras import generate_rays, intrinsics_matrix, look_at
from san.config import ConfigError
from san.mesh.config import MeshConfig
from san.mesh.extract import extract_mesh_with_stats, grid_shape, mesh_config
from san.mesh.from_nerf import depth_cameras
from san.mesh.tsdf import DepthViews, opacity_depth, tsdf_fn

BOX = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
SIZE = 48


def ring_poses(n: int, radius: float, height: float, target=(0.0, 0.0, 0.0)) -> list[np.ndarray]:
    poses = []
    for k in range(n):
        a = 2 * math.pi * k / n
        eye = np.array([radius * math.cos(a), radius * math.sin(a), height])
        poses.append(look_at(eye, np.asarray(target, dtype=float), np.array([0.0, 0.0, 1.0])))
    return poses


def exact_views(poses, hit_fn, size: int = SIZE, fov_deg: float = 60.0, far: float = 50.0) -> DepthViews:
    """Depth maps (distance along unit rays) of the surface ``hit_fn(origins, dirs) -> t`` (inf: miss;
    a miss sees a background at ``far``, which carves free space as a sky does)."""
    f = size / 2 / math.tan(math.radians(fov_deg) / 2)
    K = intrinsics_matrix(f, f, size / 2, size / 2)
    depths = []
    for c2w in poses:
        rays = generate_rays(torch.as_tensor(c2w), torch.as_tensor(K), size, size)
        t = hit_fn(rays.origins.double(), rays.directions.double())
        depths.append(torch.where(torch.isfinite(t), t, torch.full_like(t, far)).view(size, size).float())
    depth = torch.stack(depths)
    return DepthViews(
        depth,
        torch.ones_like(depth),
        torch.as_tensor(np.stack(poses), dtype=torch.float32),
        torch.as_tensor(np.stack([K] * len(poses)), dtype=torch.float32),
    )


def sphere_hit(centre, radius):
    c = torch.tensor(centre, dtype=torch.float64)

    def hit(o, d):
        oc = o - c
        b = (d * oc).sum(-1)
        disc = b * b - ((oc * oc).sum(-1) - radius**2)
        t = -b - disc.clamp_min(0).sqrt()
        return torch.where((disc > 0) & (t > 0), t, torch.full_like(t, math.inf))

    return hit


def plane_hit(z0: float):
    def hit(o, d):
        t = (z0 - o[:, 2]) / d[:, 2]
        return torch.where((d[:, 2] < 0) & (t > 0), t, torch.full_like(t, math.inf))

    return hit


def fuse(views: DepthViews, config: MeshConfig):
    _, spacing = grid_shape(BOX[0], BOX[1], config.resolution)
    fn = tsdf_fn(views, config.tsdf_truncation * float(spacing.max()))
    result = extract_mesh_with_stats(fn, BOX, config, level=0.0, unknown_nan=True)
    return result, float(spacing.max())


def test_sphere_from_exact_depth_is_recovered_within_a_voxel():
    centre, radius = np.array([0.1, -0.05, 0.0]), 0.45
    poses = ring_poses(8, 2.5, 1.0) + ring_poses(8, 2.5, -1.0)
    views = exact_views(poses, sphere_hit(centre, radius))
    config = MeshConfig(resolution=48, target_faces=0, min_component_fraction=0.0, region="none")
    result, voxel = fuse(views, config)
    mesh = result.mesh
    d = np.linalg.norm(mesh.vertices - centre, axis=1)
    assert len(mesh.faces) > 1000
    # every vertex within one voxel of the sphere: no spurious surface at the back of the truncation band
    assert np.abs(d - radius).max() < voxel
    assert np.abs(d - radius).mean() < 0.25 * voxel
    outward = np.einsum("ij,ij->i", mesh.face_normals, mesh.triangles_center - centre)
    assert (outward > 0).mean() > 0.99
    assert result.stats["grid"]["threshold"] == 0.0


def test_plane_seen_from_above_has_one_layer():
    z0 = -0.2
    views = exact_views(ring_poses(6, 1.5, 1.0), plane_hit(z0))
    config = MeshConfig(resolution=48, target_faces=0, region="none")
    result, voxel = fuse(views, config)
    z = result.mesh.vertices[:, 2]
    # one layer at the plane: nothing at the back of the band (z0 - truncation), which no view sees
    assert np.abs(z - z0).max() < voxel
    normals_z = result.mesh.face_normals[:, 2]
    assert (normals_z > 0).all() and normals_z.mean() > 0.95  # up, towards the cameras
    # the meshed patch is where the cameras look, not the whole box
    assert result.mesh.area > 0.5


def test_points_no_view_observes_are_unknown():
    views = exact_views(ring_poses(4, 1.5, 1.0), plane_hit(-0.2))
    fn = tsdf_fn(views, 0.05)
    values = fn(torch.tensor([[0.0, 0.0, -0.15], [0.0, 0.0, -0.22], [0.0, 0.0, -0.6], [0.0, 0.0, 0.5]]))
    assert values[0] < 0 < values[1]  # in front of the plane: outside; just behind it: inside
    assert torch.isnan(values[2])  # behind the band: hidden from every view
    assert values[3] == -1.0  # free space, truncated
    with pytest.raises(ValueError, match="truncation"):
        tsdf_fn(views, 0.0)


def test_opacity_depth_interpolates_where_the_opacity_is_reached():
    # one ray along +x, samples at x = 1..4, weights 0.1, 0.2, 0.4, 0.1 (cumulative 0.1 0.3 0.7 0.8)
    positions = torch.tensor([[[1.0, 0, 0], [2.0, 0, 0], [3.0, 0, 0], [4.0, 0, 0]]])
    weights = torch.tensor([[0.1, 0.2, 0.4, 0.1]])
    origins = torch.zeros(1, 3)
    depth, valid = opacity_depth(weights, positions, origins, 0.5)
    assert valid.item() and depth.item() == pytest.approx(2.5)  # halfway from 0.3 to 0.7
    depth, valid = opacity_depth(weights, positions, origins, 0.05)
    assert valid.item() and depth.item() == pytest.approx(1.0)  # the first sample already reaches it
    _, valid = opacity_depth(weights, positions, origins, 0.9)
    assert not valid.item()  # the ray never gets that opaque
    with pytest.raises(ValueError, match="opacity"):
        opacity_depth(weights, positions, origins, 0.0)


def test_depth_views_shapes_are_checked():
    with pytest.raises(ValueError, match="depth maps"):
        DepthViews(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4), torch.zeros(3, 4, 4), torch.zeros(3, 3, 3))


def test_depth_cameras_are_evenly_spaced():
    cams = list(range(42))
    picked = depth_cameras(cams, 24)
    assert len(picked) == 24 and picked[0] == 0 and picked[-1] == 41
    assert max(np.diff(picked)) <= 2
    assert depth_cameras(cams, 0) == cams and depth_cameras(cams[:5], 24) == cams[:5]


def test_tsdf_config_keys():
    assert MeshConfig().method == "tsdf"
    assert mesh_config({"preset": "paper"}).tsdf_max_views == 0
    with pytest.raises(ConfigError, match="method"):
        mesh_config({"method": "poisson"})
    for key, value in (("tsdf_image_size", 4), ("tsdf_truncation", 0.0), ("tsdf_depth_opacity", 0.0)):
        with pytest.raises(ValueError, match=key):
            MeshConfig(**{key: value})
