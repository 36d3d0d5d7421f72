"""The viewer's pure helpers (san.interaction.viewer): no viser needed, none imported."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import trimesh

from san.cameras import Camera, look_at, project_points
from san.cli import main as cli_main
from san.interaction.overlay import MASK_TINT, NEGATIVE_COLOUR, POSITIVE_COLOUR
from san.interaction.session import SegmentationSession
from san.interaction.viewer import (
    VIEWER_INSTALL,
    MissingViewerError,
    _import_viser,
    camera_to_viser,
    click_ray_to_pixel,
    compose_overlay,
    matrix_to_wxyz,
    render_dims,
    scene_up,
    viser_to_camera,
    wxyz_to_matrix,
)


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_quaternion_round_trip_covers_every_branch():
    rng = np.random.default_rng(0)
    rotations = [random_rotation(rng) for _ in range(50)]
    rotations += [np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0]), np.eye(3)]
    for R in rotations:
        q = matrix_to_wxyz(R)
        assert q[0] >= 0 and np.isclose(np.linalg.norm(q), 1.0)
        np.testing.assert_allclose(wxyz_to_matrix(q), R, atol=1e-9)


def test_quaternion_agrees_with_viser_when_installed():
    tf = pytest.importorskip("viser.transforms")
    R = random_rotation(np.random.default_rng(1))
    np.testing.assert_allclose(tf.SO3(matrix_to_wxyz(R)).as_matrix(), R, atol=1e-9)


@pytest.mark.parametrize("aspect, size, dims", [(4 / 3, 256, (256, 192)), (0.5, 200, (100, 200)), (1.0, 64, (64, 64))])
def test_render_dims_longest_side(aspect, size, dims):
    assert render_dims(aspect, size) == dims


def test_viser_camera_round_trip():
    rng = np.random.default_rng(2)
    wxyz, position = matrix_to_wxyz(random_rotation(rng)), rng.normal(size=3)
    cam = viser_to_camera(wxyz, position, fov=0.9, aspect=1.5, size=300)
    assert (cam.width, cam.height) == (300, 200)
    assert cam.c2w.shape == (4, 4) and cam.K.shape == (3, 3)
    np.testing.assert_allclose(cam.K[0, 0], cam.K[1, 1])
    np.testing.assert_allclose(cam.K[:2, 2], [150.0, 100.0])
    q, p, fov, aspect = camera_to_viser(cam)
    np.testing.assert_allclose(q, wxyz, atol=1e-12)
    np.testing.assert_allclose(p, position)
    assert np.isclose(fov, 0.9) and np.isclose(aspect, 1.5)


def test_viser_camera_projects_like_san_cameras():
    """Straight ahead lands at the image centre, +x right, +y down, the vertical fov edge at y = 0."""
    rng = np.random.default_rng(3)
    R, position = random_rotation(rng), rng.normal(size=3)
    fov = 1.1
    cam = viser_to_camera(matrix_to_wxyz(R), position, fov=fov, aspect=4 / 3, size=160)
    forward, right, down = R[:, 2], R[:, 0], R[:, 1]
    ahead = position + 2.5 * forward
    top_edge = position + forward - np.tan(fov / 2) * down
    points = torch.as_tensor(np.stack([ahead, ahead + 0.1 * right, ahead + 0.1 * down, top_edge]))
    pixels, z = project_points(points, torch.as_tensor(cam.c2w), torch.as_tensor(cam.K))
    pixels = pixels.numpy()
    np.testing.assert_allclose(pixels[0], [cam.width / 2, cam.height / 2], atol=1e-9)
    assert np.isclose(z[0], 2.5)
    assert pixels[1, 0] > pixels[0, 0] and np.isclose(pixels[1, 1], pixels[0, 1])
    assert pixels[2, 1] > pixels[0, 1] and np.isclose(pixels[2, 0], pixels[0, 0])
    np.testing.assert_allclose(pixels[3], [cam.width / 2, 0.0], atol=1e-9)


def test_scene_up_is_the_cameras_minus_y():
    c2ws = [
        look_at(np.array([3.0 * np.cos(a), 3.0 * np.sin(a), 1.0]), np.zeros(3), np.array([0.0, 0.0, 1.0]))
        for a in np.linspace(0, 6, 8)
    ]
    up = scene_up(c2ws)
    assert np.isclose(np.linalg.norm(up), 1.0) and up[2] > 0.9


def test_compose_overlay_colours(make_square, make_camera, mesh_renderer, disk_decoder, features_fn):
    mesh = make_square(2.0, 0.0, subdivisions=2)
    session = SegmentationSession(
        mesh_renderer(mesh), features_fn, disk_decoder, [Camera(*make_camera((0.0, 0.0, 4.0)))]
    )
    session.set_view(0)
    blank = compose_overlay(session.image)
    assert blank.shape == (48, 64, 3) and blank.dtype == np.uint8
    np.testing.assert_array_equal(blank, np.clip(session.image.numpy() * 255, 0, 255).astype(np.uint8))
    session.add_click(32.5, 24.5)
    session.add_click(20.5, 24.5, label=0)
    result = session.predict()
    img = compose_overlay(session.image, result)
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[24, 32], POSITIVE_COLOUR)
    np.testing.assert_array_equal(img[24, 20], NEGATIVE_COLOUR)
    far_inside = np.argwhere(result.mask.numpy())
    y, x = far_inside[np.argmax(far_inside[:, 1])]  # a mask pixel away from the markers
    expected = 0.45 * session.image.numpy()[y, x] * 255 + 0.55 * MASK_TINT
    np.testing.assert_allclose(img[y, x], expected, atol=1.0)
    ys, xs = np.mgrid[:48, :64] + 0.5
    near_marker = ((xs - 32.5) ** 2 + (ys - 24.5) ** 2 <= 16) | ((xs - 20.5) ** 2 + (ys - 24.5) ** 2 <= 16)
    untouched = ~result.mask.numpy() & ~near_marker
    np.testing.assert_array_equal(img[untouched], blank[untouched])


@pytest.fixture
def box_and_camera():
    box = trimesh.creation.box(extents=[1.0, 1.0, 1.0])
    cam = viser_to_camera(
        matrix_to_wxyz(look_at(np.array([0.0, 0.0, 4.0]), np.zeros(3), np.array([0.0, 1.0, 0.0]))[:3, :3]),
        [0.0, 0.0, 4.0],
        fov=0.8,
        aspect=1.0,
        size=64,
    )
    return box, cam


def test_click_ray_to_pixel_projects_the_mesh_hit(box_and_camera):
    box, cam = box_and_camera
    origin = np.array([1.0, 0.8, 3.0])
    target = np.array([0.1, -0.2, 0.5])  # on the +z face, seen by the camera
    hit = click_ray_to_pixel(origin, (target - origin) * 3.0, box.vertices, box.faces, cam)
    assert hit.status == "visible"
    np.testing.assert_allclose(hit.point, target, atol=1e-9)
    expected, _ = project_points(torch.as_tensor(target)[None], torch.as_tensor(cam.c2w), torch.as_tensor(cam.K))
    np.testing.assert_allclose(hit.pixel, expected[0].numpy(), atol=1e-9)
    assert 0 <= hit.pixel[0] < cam.width and 0 <= hit.pixel[1] < cam.height


def test_click_ray_to_pixel_rejects(box_and_camera):
    box, cam = box_and_camera
    assert click_ray_to_pixel([3.0, 3.0, 3.0], [1.0, 0.0, 0.0], box.vertices, box.faces, cam).status == "miss"
    back = click_ray_to_pixel([0.1, 0.2, -3.0], [0.0, 0.0, 1.0], box.vertices, box.faces, cam)  # the -z face
    assert back.status == "occluded" and back.pixel is None
    np.testing.assert_allclose(back.point, [0.1, 0.2, -0.5], atol=1e-9)
    behind_cam = viser_to_camera(
        matrix_to_wxyz(np.diag([1.0, -1.0, -1.0])), [0.0, 0.0, -4.0], fov=0.8, aspect=1.0, size=64
    )
    assert click_ray_to_pixel([0.0, 0.0, 3.0], [0.0, 0.0, -1.0], box.vertices, box.faces, behind_cam).status == "behind"
    narrow = viser_to_camera(matrix_to_wxyz(np.diag([1.0, -1.0, -1.0])), [0.0, 0.0, 4.0], fov=0.05, aspect=1.0, size=64)
    assert click_ray_to_pixel([0.4, 0.4, 3.0], [0.0, 0.0, -1.0], box.vertices, box.faces, narrow).status == "off_screen"


def test_missing_viser_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "viser", None)  # makes `import viser` raise ImportError
    with pytest.raises(MissingViewerError, match=r"pip install 'san\[viewer\]'"):
        _import_viser()
    assert VIEWER_INSTALL == "pip install 'san[viewer]'"


def test_san_view_names_missing_stages(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "viser", None)  # the stage check comes first, viser or not
    assert cli_main(["view", str(tmp_path), "--variant", "mesh"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("san view: error:")
    for text in (
        "poses/cameras.json (made by rule prepare_poses)",
        "nerf/model.pt (made by rule train_nerf)",
        "imitation/mesh/field.pt (made by rule train_imitation)",
        "mesh/mesh_normalized.ply (made by rule extract_mesh)",
    ):
        assert text in err
