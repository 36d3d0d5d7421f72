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


def test_subpixel_grid_box_filter_layout():
    from san.cameras import subpixel_grid

    assert torch.equal(
        subpixel_grid(5, 3, 1, dtype=torch.float64)[:, 0], pixel_grid(5, 3, dtype=torch.float64).reshape(-1, 2)
    )
    sub = subpixel_grid(5, 3, 2, dtype=torch.float64)
    assert sub.shape == (15, 4, 2)
    assert sub[0].tolist() == [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]  # row-major sub-samples
    assert torch.allclose(sub.mean(dim=1), pixel_grid(5, 3, dtype=torch.float64).reshape(-1, 2))  # centred
    assert sub[6].tolist()[0] == [1.25, 1.25]  # pixel (x=1, y=1) is row-major index 6
    with pytest.raises(ValueError, match="samples"):
        subpixel_grid(5, 3, 0)


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
    half = cam.resized(32)
    assert (half.width, half.height) == (32, 24) and np.allclose(half.K[:2], K[:2] / 2)
    t_c2w, t_K = cam.tensors()
    assert t_c2w.dtype == torch.float32 and t_K.shape == (3, 3)
    with pytest.raises(CameraError, match="c2w must be 4x4"):
        Camera(np.eye(3), K, 64, 48)
    with pytest.raises(CameraError, match="must be positive"):
        Camera(np.eye(4), K, 0, 48)


# ------------------------------------------------------------------------------ batched cameras


def _ring_batch(n: int = 4, size: tuple[int, int] = (W, H)):
    from san.cameras import Camera

    cams = []
    for k in range(n):
        a = 2 * np.pi * k / n
        eye = [2.0 * np.cos(a), 2.0 * np.sin(a), 0.4 + 0.1 * k]
        K = intrinsics_matrix(FX + k, FY - k, CX + 0.25 * k, CY)
        cams.append(Camera(look_at(eye, [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]), K, *size))
    return cams


def test_camera_batch_stack_index_round_trip():
    from san.cameras import Camera, CameraError

    cams = _ring_batch()
    batch = Camera.stack(cams)
    assert batch.batched and batch.batch_shape == (4,) and len(batch) == 4
    assert batch.c2w.shape == (4, 4, 4) and batch.K.shape == (4, 3, 3) and batch.width.shape == (4,)
    assert batch.size == (W, H)
    for i, cam in enumerate(cams):
        one = batch[i]
        assert not one.batched and isinstance(one.width, int) and (one.width, one.height) == (W, H)
        assert np.array_equal(one.c2w, cam.c2w) and np.array_equal(one.K, cam.K) and one.key() == cam.key()
    assert [c.key() for c in batch] == [c.key() for c in cams]  # iteration yields the cameras in order
    assert batch[-1].key() == cams[-1].key()
    part = batch[1:3]
    assert part.batched and len(part) == 2 and part[0].key() == cams[1].key()
    picked = batch[np.array([3, 0])]
    assert [c.key() for c in picked] == [cams[3].key(), cams[0].key()]
    assert len(batch[np.array([True, False, True, False])]) == 2
    joined = Camera.cat([batch[:1], batch[1:3], cams[3]])  # batches and one unbatched camera
    assert np.array_equal(joined.c2w, batch.c2w) and np.array_equal(joined.K, batch.K) and joined.key() == batch.key()
    c2w, K = batch.tensors(dtype=torch.float64)
    assert c2w.shape == (4, 4, 4) and K.shape == (4, 3, 3)
    # A shared size given as a number; per-camera sizes; the rules on one camera.
    shared = Camera(batch.c2w, batch.K, W, H)
    assert shared.width.tolist() == [W] * 4 and shared.key() == batch.key()
    mixed = Camera.stack([cams[0], cams[1].resized(24)])
    assert mixed.width.tolist() == [W, 24]
    with pytest.raises(CameraError, match="sizes differ"):
        _ = mixed.size
    with pytest.raises(TypeError):
        len(cams[0])
    assert cams[0] and batch and not batch[:0]  # truth: one camera, a non-empty batch
    with pytest.raises(TypeError, match="unbatched Camera"):
        list(cams[0])
    with pytest.raises(CameraError, match="batch shapes"):
        Camera(batch.c2w, batch.K[:2], W, H)
    with pytest.raises(CameraError, match="batch shape"):
        Camera(batch.c2w, batch.K, [W, W], H)
    with pytest.raises(CameraError, match="unbatched"):
        Camera.stack([batch])
    with pytest.raises(CameraError, match="no cameras"):
        Camera.stack([])


def test_camera_batch_resized_is_per_camera():
    from san.cameras import Camera

    cams = [_ring_batch(1, (64, 48))[0], _ring_batch(1, (30, 60))[0]]
    resized = Camera.stack(cams).resized(32)
    for one, cam in zip(resized, cams):
        ref = cam.resized(32)
        assert (one.width, one.height) == (ref.width, ref.height) and np.array_equal(one.K, ref.K)
    assert resized.width.tolist() == [32, 16] and resized.height.tolist() == [24, 32]


@pytest.mark.parametrize("distortion", [None, DIST])
def test_camera_batch_rays_equal_a_loop_over_cameras(distortion):
    from san.cameras import Camera

    cams = _ring_batch()
    batch = Camera.stack(cams).rays(dtype=torch.float64, distortion=distortion)
    assert len(batch) == 4 * H * W
    origins = batch.origins.reshape(4, H * W, 3)
    directions = batch.directions.reshape(4, H * W, 3)
    for i, cam in enumerate(cams):
        one = cam.rays(dtype=torch.float64, distortion=distortion)
        c2w, K = cam.tensors(dtype=torch.float64)
        ref = generate_rays(c2w, K, W, H, distortion)  # the unbatched function the models call
        assert torch.equal(one.origins, ref.origins) and torch.equal(one.directions, ref.directions)
        torch.testing.assert_close(origins[i], ref.origins, rtol=0, atol=1e-12)
        torch.testing.assert_close(directions[i], ref.directions, rtol=0, atol=1e-12)
    # Camera-major order: the second camera's rays start at index H*W.
    assert torch.allclose(batch.origins[H * W], torch.as_tensor(cams[1].c2w[:3, 3]))


@pytest.mark.parametrize("distortion", [None, DIST])
def test_camera_batch_projection_equals_a_loop_and_inverts_the_rays(distortion):
    from san.cameras import Camera

    cams = _ring_batch()
    points = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.5
    pixels, z = Camera.stack(cams).project(points, distortion)
    assert pixels.shape == (4, 50, 2) and z.shape == (4, 50)
    for i, cam in enumerate(cams):
        c2w, K = cam.tensors(dtype=torch.float64)
        ref_pix, ref_z = project_points(points, c2w, K, distortion)
        one_pix, one_z = cam.project(points, distortion)
        assert torch.equal(one_pix, ref_pix) and torch.equal(one_z, ref_z)
        torch.testing.assert_close(pixels[i], ref_pix, rtol=0, atol=1e-9)
        torch.testing.assert_close(z[i], ref_z, rtol=0, atol=1e-12)
    # Projection inverts ray casting camera by camera: rays through the projected pixels hit the points.
    c2w_all, K_all = (t.repeat_interleave(50, dim=0) for t in Camera.stack(cams).tensors(dtype=torch.float64))
    rays = rays_from_pixels(pixels, c2w_all, K_all, distortion)  # one camera per pixel
    hit = rays.origins + rays.directions * (points.repeat(4, 1) - rays.origins).norm(dim=-1, keepdim=True)
    torch.testing.assert_close(hit, points.repeat(4, 1), rtol=0, atol=1e-6)
    # Camera z from ray depth, batched as per camera.
    c2w, _ = Camera.stack(cams).tensors(dtype=torch.float64)
    depth = (points[None] - c2w[:, None, :3, 3]).norm(dim=-1)
    dirs = (points[None] - c2w[:, None, :3, 3]) / depth[..., None]
    torch.testing.assert_close(ray_depth_to_z(depth, dirs, c2w), z, rtol=0, atol=1e-9)
    for i in range(4):
        torch.testing.assert_close(ray_depth_to_z(depth[i], dirs[i], c2w[i]), z[i], rtol=0, atol=1e-9)


def test_records_hold_one_camera_and_pass_it_through():
    from san.benchmark import BenchmarkView
    from san.cameras import Camera, CameraError
    from san.data.scene import Frame
    from san.evaluation.protocol import EvalView

    cam = _ring_batch(1)[0]
    for record in (Frame("a.png", cam), EvalView(0, "a", cam), BenchmarkView("a", 0, "test", cam)):
        assert Camera.of(record) is cam
        assert record.c2w is cam.c2w and record.K is cam.K and (record.width, record.height) == (W, H)
        with pytest.raises(AttributeError):
            record.c2w = np.eye(4)
    batch = Camera.stack([cam, cam])
    assert np.array_equal(Camera.stack([Frame("a.png", cam), EvalView(0, "b", cam)]).c2w, batch.c2w)
    with pytest.raises(CameraError, match="frame a.png: camera must be one unbatched"):
        Frame("a.png", batch)
    with pytest.raises(CameraError, match="unbatched"):
        EvalView(0, "a", np.eye(4))


def test_single_camera_unbatches_one_and_refuses_the_rest():
    from san.cameras import Camera, CameraError, single_camera
    from san.data.scene import Frame

    cams = Camera.stack(_ring_batch(3))
    cam = cams[1]
    assert single_camera(cam, "r") is cam
    one = single_camera(cams[1:2], "r")
    assert not one.batched and np.array_equal(one.c2w, cams[1].c2w) and (one.width, one.height) == (W, H)
    for batch, count in ((cams, 3), (cams[:0], 0)):
        with pytest.raises(CameraError, match=f"^r renders one camera, got a batch of {count}"):
            single_camera(batch, "r")
    with pytest.raises(TypeError, match=r"^r takes one san.cameras.Camera, got Frame \(.*pass its .camera"):
        single_camera(Frame("a.png", cams[0]), "r")
    assert isinstance(Camera.of(Frame("a.png", cams[0])), Camera)


def test_cameras_json_round_trip_is_byte_identical(tmp_path):
    """``cameras.json`` written before cameras were a type (frames as loose fields) reads and
    writes back byte for byte."""
    import json

    from san.data.scene import load_scene, save_scene

    frames = [
        {
            "image": f"/x/{k}.png",
            "width": 64,
            "height": 48,
            "K": intrinsics_matrix(50.1 + k, 50.3, 32.2, 24.7).tolist(),
            "distortion": {"k1": 0.01 * k, "k2": 0.0, "k3": 0.0, "k4": 0.0, "p1": 0.0, "p2": 0.0},
            "c2w": look_at([1.0 + k, 0.3, 0.2], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]).tolist(),
            "split": "test" if k == 0 else "train",
        }
        for k in range(3)
    ]
    doc = {
        "format_version": 1,
        "source": {"path": "/x", "format": "colmap"},
        "scene_kind": "unbounded",
        "near": 0.1,
        "far": 10.0,
        "normalization": {"transform": np.eye(4).tolist(), "scale": 1.0},
        "frames": frames,
    }
    path = tmp_path / "cameras.json"
    path.write_text(json.dumps(doc, indent=1, allow_nan=False))
    scene = load_scene(path)
    assert scene.frames[1].camera.c2w.dtype == np.float64 and scene.frames[1].width == 64
    save_scene(scene, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()
