"""The viewer on a real viser server (tiny synthetic scene): the page is served, frustums are
small and togglable, clicks reach the session, the untrained label survives every status update,
and a newly connected browser is moved to the session view."""

from __future__ import annotations

import os
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest

from san.interaction.viewer import camera_to_viser, frustum_scale

if os.environ.get("CI") != "true":  # CI installs the viewer extra: there a missing viser fails
    pytest.importorskip("viser", reason="the viewer extra is not installed: pip install -e '.[viewer]'")


@pytest.fixture
def viewer(tmp_path):
    from tests.interaction.stub_viewer import start_stub_viewer

    server, app = start_stub_viewer(tmp_path / "exports")
    yield server, app
    server.stop()


def test_frustum_scale_follows_camera_spacing():
    ring = [np.eye(4) for _ in range(4)]
    for i, m in enumerate(ring):
        m[:3, 3] = [i * 0.1, 0.0, 0.0]
    assert np.isclose(frustum_scale(ring, extent=10.0), 0.3 * 0.1)  # spacing-bound
    assert np.isclose(frustum_scale(ring, extent=0.5), 0.03 * 0.5)  # capped by the scene size
    assert np.isclose(frustum_scale(ring[:1], extent=2.0), 0.06)


def test_server_serves_the_client_page(viewer):
    server, _ = viewer
    with urllib.request.urlopen(f"http://127.0.0.1:{server.get_port()}/", timeout=30) as r:
        assert r.status == 200 and b"<html" in r.read().lower()


def test_camera_frustums_small_and_togglable(viewer):
    _, app = viewer
    assert len(app.frustums) == len(app.session.views) == 8
    assert app.frustum_scale < 0.03 * app.extent + 1e-12
    assert all(h.visible for h in app.frustums)
    app.show_cameras.value = False  # as a browser would set the checkbox
    assert not any(h.visible for h in app.frustums)
    app.show_cameras.value = True
    assert all(h.visible for h in app.frustums)


def _centre_ray(camera):
    return camera.c2w[:3, 3], camera.c2w[:3, 2]


def test_status_keeps_the_teacher_label_through_click_error_and_export(viewer, monkeypatch):
    _, app = viewer
    label = "**UNTRAINED teacher fake_untrained"
    assert app.status.content.startswith(label)
    app._guarded(lambda: app.click(*_centre_ray(app.session.camera)))
    assert app.status.content.startswith(label) and "Click at pixel" in app.status.content
    assert len(app.session.clicks) == 1 and app.session.predict().mask.any()
    app._guarded(lambda: app.click(np.array([0.0, 0.0, 10.0]), np.array([0.0, 0.0, 1.0])))  # misses
    assert app.status.content.startswith(label) and "missed the mesh" in app.status.content

    import san.interaction.mesh_segmentation as ms

    seg = SimpleNamespace(selected=lambda: np.ones(len(app.mesh.faces), bool), vote_threshold=0.5)
    monkeypatch.setattr(app.session, "segment_mesh", lambda mesh, views: (seg, [0]))
    monkeypatch.setattr("san.interaction.viewer.mesh_views", lambda scene, start, n: [0])
    monkeypatch.setattr(ms, "export_segmentation", lambda *a, **k: SimpleNamespace(segment_faces=12, empty=[]))
    app._guarded(app.export)
    assert app.status.content.startswith(label) and "Exported 12 faces" in app.status.content


def test_new_client_is_moved_to_the_session_view(viewer):
    """``_on_connect`` answers the client's first camera report with the session camera (the
    browser test checks the same through a real page)."""
    _, app = viewer
    callbacks = []

    class FakeCamera:
        def on_update(self, cb):
            callbacks.append(cb)

    class FakeClient:
        client_id = 7
        camera = FakeCamera()

        def atomic(self):
            import contextlib

            return contextlib.nullcontext()

    app._on_connect(FakeClient())
    cam = SimpleNamespace(wxyz=None, position=None, fov=None)
    callbacks[0](cam)
    wxyz, pos, fov, _ = camera_to_viser(app.session.camera)
    np.testing.assert_allclose(cam.wxyz, wxyz)
    np.testing.assert_allclose(cam.position, pos)
    assert cam.fov == pytest.approx(fov)
    cam.position = "moved by the user"
    callbacks[0](cam)  # later reports are the user's own moves: left alone
    assert cam.position == "moved by the user"


def test_text_box_sends_a_text_prompt(tmp_path):
    """With a text-capable decoder the viewer has a text box; its text replaces the clicks and
    reaches the decoder as Prompts.text, and the status says so (with the untrained label)."""
    from tests.interaction.stub_viewer import start_stub_viewer

    server, app = start_stub_viewer(tmp_path / "exports", text_prompts=True)
    try:
        app.text.value = "a red box"
        app.segment_text()
        decoder = app.session.decode_fn
        assert decoder.calls[-1].text == "a red box" and app.session.text == "a red box"
        assert "text 'a red box'" in app.status.content and "UNTRAINED" in app.status.content
    finally:
        server.stop()
