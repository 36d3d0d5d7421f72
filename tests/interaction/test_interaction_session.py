"""SegmentationSession with stand-in parts: a mesh renderer and a disk decoder (see conftest)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import trimesh

from san.cameras import Camera, project_points
from san.data.scene import Frame
from san.interaction.session import SegmentationSession, SessionError


@pytest.fixture
def scene(make_square, make_camera, mesh_renderer, disk_decoder, features_fn):
    """A ground square at z=0 and a small occluder square at z=1.5 above (+0.6, 0); view 0 looks
    straight down, view 1 from the side where the occluder hides the ground point under it."""
    ground = make_square(6.0, 0.0, subdivisions=2)
    occluder = make_square(0.6, 1.5, centre=(0.6, 0.0))
    mesh = trimesh.util.concatenate([ground, occluder])
    views = [Camera(*make_camera((0.0, 0.0, 4.0))), Camera(*make_camera((2.4, 0.0, 4.5), target=(0.0, 0.0, 0.0)))]
    renderer = mesh_renderer(mesh)
    session = SegmentationSession(renderer, features_fn, disk_decoder, views)
    return session, renderer, disk_decoder


def test_click_follows_to_free_camera(scene, make_camera):
    session, renderer, decoder = scene
    session.set_view(0)
    click = session.add_click(20.5, 30.5)
    assert abs(click.point[2]) < 1e-5  # on the ground plane
    c2w, K, W, H = make_camera((-1.0, 1.5, 3.0), width=80, height=60)
    free = Camera(c2w, K, W, H)
    session.set_view(1)
    assert session.set_camera(Frame("free.png", free)) is free  # a record holding a camera
    assert session.set_camera(free) is free and session.view_index is None
    result = session.predict()
    expected, _ = project_points(torch.as_tensor(click.point)[None], torch.as_tensor(c2w), torch.as_tensor(K))
    assert result.prompts.click_status == ("visible",)
    assert torch.allclose(result.prompts.points, expected)
    assert result.mask.shape == (60, 80)
    assert result.score == pytest.approx(0.9)  # the best of the decoder's two candidates
    ix, iy = (int(v) for v in expected[0].floor())
    assert bool(result.mask[iy, ix])
    assert torch.allclose(decoder.calls[-1].points.double(), expected.double(), atol=1e-4)


def test_occluded_click_is_dropped(scene):
    session, _, decoder = scene
    session.set_view(0)
    # The ground point under the occluder's shadow line as seen from view 1: ground (0.0, 0.0)
    # lies behind the occluder from view 1 (camera at x=2.4, z=4.5, occluder at x=0.6, z=1.5).
    W, H = session.camera.width, session.camera.height
    session.add_click(W / 2, H / 2)  # ground (0, 0): hidden in view 1
    session.add_click(W / 2 - 15, H / 2)  # ground (-1, 0)-ish: visible in view 1
    session.set_view(1)
    vp = session.view_prompts()
    assert vp.click_status == ("occluded", "visible")
    assert vp.points.shape == (1, 2)
    result = session.predict()
    assert decoder.calls[-1].points.shape == (1, 2)
    assert result.mask.any()


def test_no_usable_prompt_gives_empty_mask_without_decoding(scene):
    session, _, decoder = scene
    session.set_view(0)
    W, H = session.camera.width, session.camera.height
    session.add_click(W / 2, H / 2)
    session.set_view(1)
    result = session.predict()
    assert result.score == 0.0 and not result.mask.any() and result.masks.shape[0] == 0
    assert decoder.calls == []


def test_box_roundtrip_and_undo(scene):
    session, _, decoder = scene
    session.set_view(0)
    box = session.add_box(10, 8, 40, 30)
    assert box.samples.shape == (25, 3)
    vp = session.view_prompts()
    assert vp.box_status == "visible"
    assert torch.allclose(vp.box, torch.tensor([10.0, 8.0, 40.0, 30.0], dtype=torch.float64), atol=1e-6)
    session.add_box(0, 0, 64, 48)  # the whole image: corners clamp inside, still lifts
    session.add_click(5.5, 5.5, label=0)
    session.undo()
    assert session.clicks == []
    session.undo()
    assert session.box is box  # undoing a box brings back the one it replaced
    session.set_view(1)
    vp = session.view_prompts()
    assert vp.box_status == "visible" and vp.box is not None
    session.clear()
    assert session.box is None and session.clicks == []
    with pytest.raises(SessionError, match="nothing to undo"):
        session.undo()


def test_render_and_features_are_cached(scene):
    session, renderer, _ = scene
    session.set_view(0)
    session.add_click(20.5, 20.5)
    session.predict()
    session.predict()
    session.set_view(1)
    session.predict()
    session.set_view(0)
    session.predict()
    assert renderer.calls == 2


def test_predict_views_restores_camera(scene):
    session, _, _ = scene
    session.set_view(0)
    session.add_click(10.5, 10.5)
    results = session.predict_views([0, 1])
    assert len(results) == 2 and session.view_index == 0


def test_errors(scene):
    session, _, _ = scene
    with pytest.raises(SessionError, match="no camera"):
        session.add_click(1, 1)
    with pytest.raises(SessionError, match=r"unknown view 2: the session has 2 view\(s\)"):
        session.set_view(2)
    with pytest.raises(SessionError, match="unknown view"):
        session.set_view(-1)
    session.set_view(0)
    with pytest.raises(SessionError, match=r"outside the 64x48 image"):
        session.add_click(64.0, 3.0)
    with pytest.raises(SessionError, match="outside"):
        session.add_click(3.0, -1.0)
    with pytest.raises(SessionError, match="labels must be 1"):
        session.add_click(3.0, 3.0, label=2)
    with pytest.raises(SessionError, match="box"):
        session.add_box(10, 10, 5, 20)
    with pytest.raises(SessionError, match="c2w must be 4x4"):
        session.set_camera(SimpleNamespace(c2w=np.eye(3), K=np.eye(3), width=10, height=10))
    with pytest.raises(SessionError, match="takes a san.cameras.Camera"):
        session.set_camera((np.eye(4), np.eye(3), 10, 10))
    with pytest.raises(SessionError, match="got a batch of 2"):
        session.set_camera(Camera.stack(session.views))
    assert session.clicks == [] and session.view_index == 0


def test_click_on_empty_background_is_an_error(make_square, make_camera, mesh_renderer, disk_decoder, features_fn):
    mesh = make_square(0.5, 0.0)
    session = SegmentationSession(
        mesh_renderer(mesh), features_fn, disk_decoder, [Camera(*make_camera((0.0, 0.0, 4.0)))]
    )
    session.set_view(0)
    with pytest.raises(SessionError, match="no surface"):
        session.add_click(1.5, 1.5)


def test_decoder_output_shape_is_checked(scene):
    session, _, _ = scene
    session.decode_fn = lambda f, p, s: (torch.zeros(2, 5, 5, dtype=torch.bool), torch.zeros(2))
    session.set_view(0)
    session.add_click(3.5, 3.5)
    with pytest.raises(SessionError, match="decode_fn returned masks"):
        session.predict()


def test_segment_mesh_votes_predicted_masks(scene, make_square, mesh_renderer):
    session, renderer, _ = scene
    fine = make_square(6.0, 0.0, subdivisions=5)  # 0.19 m cells: small next to the 0.4 m mask disk
    session.set_view(0)
    click = session.add_click(16.5, 24.5)  # ground, away from the occluder
    seg, used = session.segment_mesh(fine, [0, 1])
    assert used == [0, 1] and seg.views == 2
    selected = seg.selected().numpy()
    centres = fine.triangles_center[selected]
    assert len(centres) >= 4 and np.linalg.norm(centres[:, :2] - click.point[:2], axis=1).max() < 0.8
    session.clear()
    session.add_click(32.5, 24.5)  # hidden in view 1: that view is skipped
    assert session.segment_mesh(renderer.mesh, [0, 1])[1] == [0]
