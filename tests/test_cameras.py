"""The camera convention of ``san.cameras``: OpenCV frame, pixel centres at +0.5, unit rays,
distortion handled in ray generation, projection as the exact inverse of ray casting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from san.cameras import (
    distort_normalized,
    generate_rays,
    has_distortion,
    intrinsics_matrix,
    look_at,
    orthonormality_error,
    pixel_grid,
    project_points,
    ray_depth_to_z,
    rays_from_pixels,
    resize_longest_side,
    scale_intrinsics,
    undistort_normalized,
    zero_distortion,
)

DIST = {"k1": -0.1, "k2": 0.02, "k3": -0.004, "p1": 1e-3, "p2": -1e-3}
W, H = 48, 36
FX, FY, CX, CY = 40.0, 44.0, 23.0, 19.0  # fx != fy and an off-centre principal point: swaps show


def _K(dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(intrinsics_matrix(FX, FY, CX, CY), dtype=dtype)


def _pose(dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(look_at([1.5, -2.0, 0.7], [0.1, 0.3, -0.2], [0.0, 0.0, 1.0]), dtype=dtype)


def _opencv_distort(x: np.ndarray, y: np.ndarray, d: dict) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's radial-tangential model written out independently of ``san.cameras``."""
    k1, k2, k3, p1, p2 = (d.get(k, 0.0) for k in ("k1", "k2", "k3", "p1", "p2"))
    r2 = x**2 + y**2
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x**2)
    yd = y * radial + p1 * (r2 + 2 * y**2) + 2 * p2 * x * y
    return xd, yd


# ------------------------------------------------------------------------------------ pixel grid


def test_pixel_grid_centres_at_half():
    grid = pixel_grid(5, 3, dtype=torch.float64)
    assert grid.shape == (3, 5, 2)
    assert grid[0, 0].tolist() == [0.5, 0.5]
    assert grid[0, 1].tolist() == [1.5, 0.5]  # x runs along the width (last axis)
    assert grid[1, 0].tolist() == [0.5, 1.5]  # y runs along the height
    assert grid[-1, -1].tolist() == [4.5, 2.5]


# ----------------------------------------------------------------------------------- ray casting


def test_identity_camera_rays():
    w, h, fx, fy = 5, 3, 4.0, 6.0
    cx, cy = w / 2, h / 2  # odd sizes: the centre pixel (2, 1) has its centre exactly at (cx, cy)
    K = torch.tensor(intrinsics_matrix(fx, fy, cx, cy))
    rays = generate_rays(torch.eye(4, dtype=torch.float64), K, w, h)
    assert len(rays) == w * h
    assert torch.allclose(rays.origins, torch.zeros(w * h, 3, dtype=torch.float64))
    dirs = rays.directions.reshape(h, w, 3)
    assert torch.allclose(dirs[1, 2], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), atol=1e-12)
    expected = torch.tensor([(0.5 - cx) / fx, (0.5 - cy) / fy, 1.0], dtype=torch.float64)
    assert torch.allclose(dirs[0, 0], expected / expected.norm(), atol=1e-12)
    # Row-major order: the second ray is pixel (1, 0), i.e. x = 1.5, same y.
    expected = torch.tensor([(1.5 - cx) / fx, (0.5 - cy) / fy, 1.0], dtype=torch.float64)
    assert torch.allclose(rays.directions[1], expected / expected.norm(), atol=1e-12)
    # OpenCV: +x right, +y down.
    assert dirs[1, -1, 0] > 0 and dirs[-1, 2, 1] > 0 and dirs[0, 2, 1] < 0


@pytest.mark.parametrize("distortion", [None, DIST])
def test_directions_are_unit_length(distortion):
    rays = generate_rays(_pose(), _K(), W, H, distortion)
    assert rays.directions.shape == (W * H, 3)
    assert torch.allclose(rays.directions.norm(dim=-1), torch.ones(W * H, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(rays.origins, _pose()[:3, 3].expand(W * H, 3))


def test_rays_rotate_with_the_pose():
    c2w = _pose()
    local = generate_rays(torch.eye(4, dtype=torch.float64), _K(), W, H).directions
    world = generate_rays(c2w, _K(), W, H).directions
    assert torch.allclose(world, local @ c2w[:3, :3].T, atol=1e-12)


@pytest.mark.parametrize("distortion", [None, DIST], ids=["pinhole", "opencv"])
def test_project_inverts_ray_casting(distortion):
    c2w, K = _pose(), _K()
    gen = torch.Generator().manual_seed(0)
    pixels = torch.rand(200, 2, generator=gen, dtype=torch.float64) * torch.tensor([W, H], dtype=torch.float64)
    pixels = torch.cat([pixels, pixel_grid(W, H, dtype=torch.float64)[[0, 0, -1, -1], [0, -1, 0, -1]]])  # corners
    rays = rays_from_pixels(pixels, c2w, K, distortion)
    t = 0.5 + 3.0 * torch.rand(len(pixels), generator=gen, dtype=torch.float64)
    points = rays.origins + t[:, None] * rays.directions
    projected, z = project_points(points, c2w, K, distortion)
    assert torch.allclose(projected, pixels, atol=1e-6)
    assert (z > 0).all()
    assert torch.allclose(z, ray_depth_to_z(t, rays.directions, c2w), atol=1e-9)


def test_distortion_changes_the_rays_as_opencv_does():
    K = _K()
    pixels = pixel_grid(W, H, dtype=torch.float64).reshape(-1, 2)
    plain = rays_from_pixels(pixels, torch.eye(4, dtype=torch.float64), K).directions
    bent = rays_from_pixels(pixels, torch.eye(4, dtype=torch.float64), K, DIST).directions
    assert (plain - bent).norm(dim=-1).max() > 1e-3  # distortion is not ignored
    # The ray of a pixel passes through the *undistorted* coordinate: distorting it with OpenCV's
    # model gives back the pixel's normalised coordinate.
    x, y = (bent[:, 0] / bent[:, 2]).numpy(), (bent[:, 1] / bent[:, 2]).numpy()
    xd, yd = _opencv_distort(x, y, DIST)
    assert np.allclose(xd, ((pixels[:, 0] - CX) / FX).numpy(), atol=1e-9)
    assert np.allclose(yd, ((pixels[:, 1] - CY) / FY).numpy(), atol=1e-9)


def test_zero_distortion_is_pinhole():
    assert not has_distortion(None) and not has_distortion(zero_distortion()) and not has_distortion({})
    assert has_distortion({"p2": 1e-4})
    a = generate_rays(_pose(), _K(), W, H).directions
    b = generate_rays(_pose(), _K(), W, H, zero_distortion()).directions
    assert torch.equal(a, b)


def test_per_ray_poses_broadcast():
    pose_a, pose_b = _pose(), torch.tensor(look_at([0, 0, -3], [0, 0, 0], [0, -1, 0]))
    pixels = torch.tensor([[3.5, 7.5], [20.25, 11.75]], dtype=torch.float64)
    batched = rays_from_pixels(pixels, torch.stack([pose_a, pose_b]), _K())
    for i, pose in enumerate((pose_a, pose_b)):
        single = rays_from_pixels(pixels[i : i + 1], pose, _K())
        assert torch.allclose(batched.directions[i], single.directions[0], atol=1e-12)
        assert torch.allclose(batched.origins[i], single.origins[0])


# ------------------------------------------------------------------------------------ distortion


def test_undistort_inverts_distort():
    gen = torch.Generator().manual_seed(1)
    x, y = (torch.rand(2, 1000, generator=gen, dtype=torch.float64) * 1.2 - 0.6).unbind(0)
    xd, yd = distort_normalized(x, y, DIST)
    ref = _opencv_distort(x.numpy(), y.numpy(), DIST)
    assert np.allclose(xd.numpy(), ref[0], atol=1e-12) and np.allclose(yd.numpy(), ref[1], atol=1e-12)
    xu, yu = undistort_normalized(xd, yd, DIST)
    assert (xu - x).abs().max() < 1e-6 and (yu - y).abs().max() < 1e-6
    # And the other way round.
    xr, yr = distort_normalized(*undistort_normalized(x, y, DIST), DIST)
    assert (xr - x).abs().max() < 1e-6 and (yr - y).abs().max() < 1e-6


# ------------------------------------------------------------------------------------ intrinsics


def test_scale_intrinsics_matches_a_resize():
    K = intrinsics_matrix(FX, FY, CX, CY)
    K_half = scale_intrinsics(K, 0.5)
    assert np.allclose(K_half, intrinsics_matrix(FX / 2, FY / 2, CX / 2, CY / 2))
    assert np.allclose(K, intrinsics_matrix(FX, FY, CX, CY))  # input untouched
    K_aniso = scale_intrinsics(torch.tensor(K), 2.0, 3.0)
    assert isinstance(K_aniso, torch.Tensor)
    assert torch.allclose(K_aniso, torch.tensor(intrinsics_matrix(2 * FX, 3 * FY, 2 * CX, 3 * CY)))

    # A point projects to s times its old pixel coordinate in the resized image.
    points = torch.tensor([[0.3, -0.2, 0.1], [-0.4, 0.25, -0.3]], dtype=torch.float64)
    old, _ = project_points(points, _pose(), torch.tensor(K))
    new, _ = project_points(points, _pose(), K_aniso)
    assert torch.allclose(new, old * torch.tensor([2.0, 3.0], dtype=torch.float64))

    # Halving the size: new pixel (0, 0)'s centre is the corner shared by old pixels (0..1, 0..1).
    ray_new = rays_from_pixels(torch.tensor([[0.5, 0.5]]), torch.eye(4, dtype=torch.float64), torch.tensor(K_half))
    ray_old = rays_from_pixels(torch.tensor([[1.0, 1.0]]), torch.eye(4, dtype=torch.float64), torch.tensor(K))
    assert torch.allclose(ray_new.directions, ray_old.directions, atol=1e-12)


# ------------------------------------------------------------------------------------- look_at


def test_look_at_points_the_camera_at_the_target():
    eye, target, up = np.array([3.0, -4.0, 2.0]), np.array([0.5, 0.2, -0.3]), np.array([0.0, 0.0, 1.0])
    c2w = look_at(eye, target, up)
    assert orthonormality_error(c2w[:3, :3]) < 1e-12
    assert np.linalg.det(c2w[:3, :3]) == pytest.approx(1.0)  # a rotation, not a reflection
    assert np.allclose(c2w[:3, 3], eye)
    K = torch.tensor(intrinsics_matrix(50.0, 50.0, 32.0, 24.0))
    pose = torch.tensor(c2w)
    pts = torch.tensor(np.stack([target, target + 0.5 * up, target + 0.5 * c2w[:3, 0]]))
    uv, z = project_points(pts, pose, K)
    assert torch.allclose(uv[0], torch.tensor([32.0, 24.0], dtype=torch.float64), atol=1e-9)
    assert z[0] == pytest.approx(np.linalg.norm(target - eye))
    assert uv[1, 1] < 24.0 - 1.0  # world up appears up in the image (smaller y)
    assert uv[1, 0] == pytest.approx(32.0, abs=1e-9)  # ... straight up
    assert uv[2, 0] > 32.0 + 1.0  # the camera's +x is image right
    # Inputs are not modified.
    assert np.allclose(eye, [3.0, -4.0, 2.0]) and np.allclose(target, [0.5, 0.2, -0.3])


def test_look_at_with_up_along_the_view_direction():
    c2w = look_at([0.0, 0.0, 5.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0])
    assert np.all(np.isfinite(c2w))
    assert orthonormality_error(c2w[:3, :3]) < 1e-12
    assert np.linalg.det(c2w[:3, :3]) == pytest.approx(1.0)
    assert np.allclose(c2w[:3, 2], [0.0, 0.0, -1.0])


# ----------------------------------------------------------------------------------------- depth


def test_ray_depth_to_z():
    c2w, K = _pose(), _K()
    rays = generate_rays(c2w, K, W, H)
    forward = c2w[:3, 2]
    cos = rays.directions @ forward
    t = 2.5 / cos  # every ray hits the fronto-parallel plane at camera depth z = 2.5
    z = ray_depth_to_z(t, rays.directions, c2w)
    assert torch.allclose(z, torch.full_like(z, 2.5), atol=1e-12)
    assert (t > z - 1e-12).all() and (t.max() > 2.5 + 0.1)  # off-axis rays are longer than z


def test_resize_longest_side_keeps_the_aspect_and_scales_K_per_axis():
    K = np.array([[800.0, 0, 504], [0, 800, 378], [0, 0, 1]])
    K2, w, h = resize_longest_side(K, 1008, 756, 512)
    assert (w, h) == (512, 384)
    np.testing.assert_allclose(K2[0], [800 * 512 / 1008, 0, 504 * 512 / 1008])
    np.testing.assert_allclose(K2[1], [0, 800 * 384 / 756, 378 * 384 / 756])
    assert resize_longest_side(K, 300, 600, 128)[1:] == (64, 128)
    assert isinstance(resize_longest_side(torch.tensor(K), 300, 600, 128)[0], torch.Tensor)


def test_camera_record_validates_converts_and_resizes():
    from san.cameras import Camera, CameraError
    from san.data.scene import Frame

    K = intrinsics_matrix(50.0, 50.0, 32.0, 24.0)
    frame = Frame("a.png", Camera(np.eye(4), K, 64, 48))
    cam = Camera.of(frame)
    assert Camera.of(cam) is cam and (cam.width, cam.height) == (64, 48) and cam.c2w.dtype == np.float64
    assert Camera(np.eye(4)[:3], K, 64, 48).c2w.shape == (4, 4)  # 3x4 completed
    c2w, K2, w, h = cam.resized(32).astuple()
    assert (w, h) == (32, 24) and np.allclose(K2[:2], K[:2] / 2)
    t_c2w, t_K = cam.tensors()
    assert t_c2w.dtype == torch.float32 and t_K.shape == (3, 3)
    with pytest.raises(CameraError, match="c2w must be 4x4"):
        Camera(np.eye(3), K, 64, 48)
    with pytest.raises(CameraError, match="must be positive"):
        Camera(np.eye(4), K, 0, 48)
