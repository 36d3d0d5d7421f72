"""Feature cameras (teacher-input geometry at the feature resolution), ray geometry and the head."""

from __future__ import annotations

import math

import pytest
import torch

from san.cameras import RayBundle, intrinsics_matrix, look_at, project_points
from san.imitation.config import FeatureHeadConfig
from san.imitation.geometry import (
    RayGeometry,
    feature_camera,
    feature_rays,
    keep_largest_weights,
    mesh_geometry,
    volume_geometry,
)
from san.imitation.head import FeatureHead, head_input
from san.teachers.base import valid_feature_hw


def test_sam_feature_camera_for_a_non_square_view():
    # LLFF fern at 1/8 resolution: 504 x 378 -> resized 1024 x 768 -> 64 x 48 valid cells of 64 x 64.
    K = torch.tensor(intrinsics_matrix(407.6, 407.6, 252.0, 189.0), dtype=torch.float32)
    cam = feature_camera(K, 504, 378, 1024, (64, 64))
    assert cam.map_hw == (64, 64) and cam.valid_hw == (48, 64) == valid_feature_hw((378, 504), 1024, (64, 64))
    torch.testing.assert_close(cam.K[0, 0], torch.tensor(407.6 * 64 / 504))
    torch.testing.assert_close(cam.K[1, 2], torch.tensor(189.0 * 48 / 378))
    pixels, index = cam.pixels()
    assert pixels.shape == (48 * 64, 2) and int(index.max()) == 47 * 64 + 63
    # A world point seen at image pixel (u, v) lies at feature cell (u, v) * 64 / 504.
    c2w = torch.tensor(look_at([0.0, 0.0, -3.0], [0.0, 0.0, 0.0], [0.0, -1.0, 0.0]), dtype=torch.float32)
    pts = torch.tensor([[0.3, -0.2, 0.1], [-0.5, 0.4, 0.0]])
    uv, _ = project_points(pts, c2w, K)
    uv_map, _ = project_points(pts, c2w, cam.K)
    torch.testing.assert_close(uv_map, uv * 64 / 504)


def test_feature_rays_pass_through_cell_centres():
    K = intrinsics_matrix(20.0, 20.0, 16.0, 8.0)
    cam = feature_camera(K, 32, 16, 64, (8, 8))  # 32x16 -> 64x32 -> 8x4 valid cells
    assert cam.valid_hw == (4, 8)
    c2w = torch.eye(4)
    rays, index = feature_rays(c2w, cam)
    assert len(rays) == 32 and index.tolist()[:9] == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    # Cell (0, 0)'s centre is image pixel (2, 2) (4 image pixels per cell): direction (2 - 16, 2 - 8, 20).
    expected = torch.tensor([2.0 - 16.0, 2.0 - 8.0, 20.0])
    torch.testing.assert_close(rays.directions[0], expected / expected.norm())


def test_keep_largest_weights_and_volume_geometry(nerf):
    w = torch.tensor([[0.125, 0.5, 0.25, 0.0625]])
    pos = torch.arange(12.0).view(1, 4, 3)
    kw, kp = keep_largest_weights(w, pos, 2)
    assert kw.tolist() == [[0.5, 0.25]] and kp[0, 0].tolist() == [3.0, 4.0, 5.0]
    assert keep_largest_weights(w, pos, 0)[0] is w
    rays = RayBundle(
        torch.tensor([[0.0, 0.0, -2.0], [0.0, 2.0, -2.0]]), torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    )
    g = volume_geometry(nerf, rays, nerf.normalize_positions, max_samples=6, chunk=1)
    assert g.weights.shape == (2, 6) and g.points.shape == (2, 6, 3) and g.rgb.shape == (2, 3)
    assert float(g.points.min()) >= 0 and float(g.points.max()) <= 1
    assert float(g.depth[0]) == pytest.approx(1.4, abs=0.15)  # the sphere's surface at z = -0.6
    assert g[torch.tensor([1])].weights.shape == (1, 6)


def test_mesh_geometry_hits_and_background():
    v = torch.tensor([[-1.0, -1, 0], [1, -1, 0], [0, 1, 0]])
    f = torch.tensor([[0, 1, 2]])
    rays = RayBundle(torch.tensor([[0.0, 0.0, 2.0], [5.0, 5.0, 2.0]]), torch.tensor([[0.0, 0, -1], [0.0, 0, -1]]))
    to_grid = lambda p: (p * 1e-3 + 0.5).clamp(0, 1)  # noqa: E731
    g = mesh_geometry(v, f, rays, to_grid, background=None)
    assert g.weights.tolist() == [[1.0], [0.0]] and g.rgb is None
    assert float(g.depth[0]) == pytest.approx(2.0) and math.isinf(float(g.depth[1]))
    torch.testing.assert_close(g.points[0, 0], torch.tensor([0.5, 0.5, 0.5]))
    assert g.points[1].abs().sum() == 0
    # Default: a miss reads the grid far along its ray (a per-direction background), weight 1.
    g = mesh_geometry(v, f, rays, to_grid)
    assert g.weights.tolist() == [[1.0], [1.0]] and math.isinf(float(g.depth[1]))
    torch.testing.assert_close(g.points[1, 0], to_grid(torch.tensor([5.0, 5.0, 2.0 - 1e3])))


def test_head_shapes_skip_and_layer_norm():
    cfg = FeatureHeadConfig(width=16, layers=5, skip=2, latent_dim=4)
    assert cfg.input_dim(10) == 10 + 3 + 1 + 4
    head = FeatureHead(cfg.input_dim(10), 7, cfg)
    assert [layer.in_features for layer in head.linears] == [18, 16, 16 + 18, 16, 16]
    assert head.linears[-1].out_features == 7
    grid = torch.randn(5, 10)
    depth = torch.tensor([0.0, 1.0, 3.0, math.inf, float("nan")])
    x = head_input(grid, torch.rand(5, 3), depth, cfg, torch.randn(5, 4))
    torch.testing.assert_close(x[:, 13], torch.tensor([1.0, 0.5, 0.25, 0.0, 0.0]))
    y = head(x)
    assert y.shape == (5, 7)
    torch.testing.assert_close(y.mean(1), torch.zeros(5), atol=1e-5, rtol=0)  # LayerNorm at init
    with pytest.raises(ValueError, match="latent"):
        head_input(grid, torch.rand(5, 3), depth, cfg, None)
    no_skip = FeatureHead(10, 3, FeatureHeadConfig(width=8, layers=2, skip=0, use_rgb=False, use_depth=False))
    assert [layer.in_features for layer in no_skip.linears] == [10, 8]


def test_ray_geometry_cat_pads_samples():
    a = RayGeometry(torch.ones(2, 3), torch.zeros(2, 3, 3), torch.zeros(2, 3), torch.ones(2))
    b = RayGeometry(torch.ones(1, 1), torch.zeros(1, 1, 3), torch.zeros(1, 3), torch.ones(1))
    c = RayGeometry.cat([a, b])
    assert c.weights.shape == (3, 3) and c.weights[2].tolist() == [1.0, 0.0, 0.0] and len(c) == 3
