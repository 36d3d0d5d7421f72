"""Lifting clicks to 3D and re-projecting them, on a synthetic plane with exact depth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from san.cameras import generate_rays, project_points
from san.interaction.tracking import (
    DepthTolerance,
    PointStatus,
    lift_pixels,
    reproject_points,
)


def plane_depth(c2w, K, width, height, z_plane=0.0):
    """Exact distance along each pixel's ray to the plane ``z = z_plane``."""
    rays = generate_rays(torch.as_tensor(c2w), torch.as_tensor(K), width, height)
    t = (z_plane - rays.origins[:, 2]) / rays.directions[:, 2]
    return t.reshape(height, width)


def test_lift_lands_on_plane_and_reprojects_to_analytic_pixel(make_camera):
    c2w_a, K, W, H = make_camera((0.3, -0.2, 3.0))
    c2w_b, _, _, _ = make_camera((-1.5, 0.8, 2.5))
    depth_a = plane_depth(c2w_a, K, W, H)
    pixels = torch.tensor([[10.5, 7.5], [32.0, 24.0], [50.25, 40.75]], dtype=torch.float64)
    points = lift_pixels(pixels, depth_a, c2w_a, K)
    # A pixel centre lands exactly on the plane; elsewhere the depth comes from the containing
    # pixel's centre, so the point is off the plane by at most the depth change within a pixel.
    assert abs(float(points[0, 2])) < 1e-5
    assert points[:, 2].abs().max() < 0.01
    # Same camera: back to the clicked pixel.
    back, _ = project_points(points, torch.as_tensor(c2w_a), torch.as_tensor(K))
    assert torch.allclose(back, pixels, atol=1e-6)
    # Another camera: the analytic projection, visible.
    depth_b = plane_depth(c2w_b, K, W, H)
    rep = reproject_points(points, c2w_b, K, depth_b)
    expected, _ = project_points(points, torch.as_tensor(c2w_b), torch.as_tensor(K))
    assert torch.allclose(rep.pixels, expected)
    assert rep.visible.all(), rep.status
    assert torch.allclose(rep.distance, (points - torch.as_tensor(c2w_b)[:3, 3]).norm(dim=-1))


def test_status_off_screen_behind_and_occluded(make_camera):
    c2w_a, K, W, H = make_camera((0.0, 0.0, 3.0))
    depth_a = plane_depth(c2w_a, K, W, H)
    centre = lift_pixels([[32.5, 24.5]], depth_a, c2w_a, K)
    far_left = lift_pixels([[0.5, 24.5]], depth_a, c2w_a, K)
    # A camera looking away from the plane: the point is behind it.
    c2w_away, _, _, _ = make_camera((0.0, 0.0, 3.0), target=(0.0, 0.0, 6.0))
    rep = reproject_points(centre, c2w_away, K, torch.ones(H, W))
    assert rep.status.tolist() == [PointStatus.BEHIND]
    # A camera shifted right so the leftmost point leaves the image.
    c2w_right, _, _, _ = make_camera((3.0, 0.0, 3.0), target=(3.0, 0.0, 0.0))
    rep = reproject_points(far_left, c2w_right, K, plane_depth(c2w_right, K, W, H))
    assert rep.status.tolist() == [PointStatus.OFF_SCREEN]
    # An occluder: the rendered depth at the point's pixel is half the distance.
    depth_occ = depth_a.clone()
    depth_occ[24, 32] = depth_occ[24, 32] / 2
    rep = reproject_points(centre, c2w_a, K, depth_occ)
    assert rep.status.tolist() == [PointStatus.OCCLUDED]
    # A point floating in front of the rendered surface is not usable either.
    depth_far = depth_a.clone()
    depth_far[24, 32] = depth_far[24, 32] * 2
    assert reproject_points(centre, c2w_a, K, depth_far).status.tolist() == [PointStatus.OCCLUDED]


def test_tolerance_is_relative_plus_absolute(make_camera):
    c2w, K, W, H = make_camera((0.0, 0.0, 3.0))
    depth = plane_depth(c2w, K, W, H)
    point = lift_pixels([[32.5, 24.5]], depth, c2w, K)
    d = float(depth[24, 32])
    tol = DepthTolerance(relative=0.03, absolute=0.01)
    assert tol(torch.tensor(d)) == pytest.approx(0.03 * d + 0.01)
    for delta, ok in ((0.99, True), (1.01, False)):
        shifted = depth.clone()
        # Rendered depth such that |distance - rendered| = delta * tol(rendered).
        shifted[24, 32] = (d - delta * 0.01) / (1 + delta * 0.03)
        assert bool(reproject_points(point, c2w, K, shifted, tol).visible[0]) is ok


def test_lift_errors(make_camera):
    c2w, K, W, H = make_camera((0.0, 0.0, 3.0))
    depth = plane_depth(c2w, K, W, H)
    with pytest.raises(ValueError, match=r"outside the 64x48 image"):
        lift_pixels([[64.0, 10.0]], depth, c2w, K)
    with pytest.raises(ValueError, match="outside"):
        lift_pixels([[-0.1, 10.0]], depth, c2w, K)
    bad = depth.clone()
    bad[5, 5] = float("inf")
    with pytest.raises(ValueError, match="no surface"):
        lift_pixels([[5.5, 5.5]], bad, c2w, K)
    with pytest.raises(ValueError, match="both must be"):
        DepthTolerance(0.0, 0.0)


def test_reproject_empty():
    rep = reproject_points(np.zeros((0, 3)), np.eye(4), np.eye(3), torch.ones(4, 4))
    assert rep.pixels.shape == (0, 2) and rep.status.numel() == 0


def test_sample_depth_is_first_order_on_slopes_and_never_mixes_a_silhouette():
    from san.interaction.tracking import sample_depth

    H, W = 6, 8
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    ramp = (2.0 + 0.1 * xs + 0.05 * ys).double()  # a depth linear in the pixel position
    pts = torch.tensor([[3.2, 2.9], [4.5, 1.5], [6.99, 4.01]], dtype=torch.float64)
    expected = 2.0 + 0.1 * pts[:, 0] + 0.05 * pts[:, 1]
    assert torch.allclose(sample_depth(ramp, pts), expected)
    # A silhouette: object (depth 2) left of x = 4, background (depth 10) right of it. Positions
    # next to the jump read their own side's depth, never a value in between.
    step = torch.where(xs < 4, torch.full_like(xs, 2.0), torch.full_like(xs, 10.0)).double()
    d = sample_depth(step, torch.tensor([[3.9, 2.5], [4.1, 2.5]], dtype=torch.float64))
    assert d.tolist() == [2.0, 10.0]
