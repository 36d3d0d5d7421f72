"""``san view`` in a real browser: headless Chromium opens the viewer page, waits for the scene,
clicks the mesh through the page, and a mask arrives (server session and page status).

The scene is a trained one when ``SAN_VIEWER_SCENE`` names its folder (CI: the demo scene the Slurm
run just trained, ``results/demo/demo``; variant ``SAN_VIEWER_VARIANT``, default ``full``), else the tiny synthetic box of ``stub_viewer.py``. The
screenshot is written to ``SAN_SCREENSHOT_DIR`` (CI: ``results/ci``), else to pytest's tmp folder.
Needs Chromium (Debian ``chromium``) and the viewer extra; both are required under ``CI=true``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from san.interaction.viewer import camera_to_viser
from tests.interaction.browser import Chromium, find_chromium

CI = os.environ.get("CI") == "true"


def _require():
    if not CI:
        pytest.importorskip("viser", reason="the viewer extra is not installed: pip install -e '.[viewer]'")
    chromium = find_chromium()
    if chromium is None:
        if CI:
            pytest.fail("chromium is not installed (CI: apt-get install chromium)")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return chromium


@pytest.fixture
def running_viewer(tmp_path):
    from tests.interaction.stub_viewer import free_port, start_stub_viewer

    scene_dir = os.environ.get("SAN_VIEWER_SCENE")
    if scene_dir:
        from san.interaction.viewer import run_viewer

        port = free_port()
        variant = os.environ.get("SAN_VIEWER_VARIANT", "full")
        app = run_viewer(
            scene_dir, variant, port=port, render_size=128, out_dir=tmp_path / "exports", device="cpu", block=False
        )
        server = app.server
    else:
        server, app = start_stub_viewer(tmp_path / "exports")
    yield server, app
    server.stop()


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_click_the_mesh_in_headless_chromium(running_viewer, tmp_path):
    chromium = _require()
    server, app = running_viewer
    shots = Path(os.environ.get("SAN_SCREENSHOT_DIR") or tmp_path)
    with Chromium(chromium) as page:
        page.goto(f"http://127.0.0.1:{server.get_port()}/")
        _wait(lambda: len(server.get_clients()) == 1, 60, "the page's websocket connection")
        page.wait_for("document.querySelector('canvas') !== null", 60, "the 3D canvas")
        page.wait_for("document.body.innerText.includes('usable here')", 60, "the status panel")
        client = next(iter(server.get_clients().values()))
        # The browser camera starts at the session view (the client reports its camera back).
        wxyz, position, _, _ = camera_to_viser(app.session.camera)
        _wait(
            lambda: np.allclose(client.camera.position, position, atol=1e-3 * app.extent),
            60,
            "the browser camera at the session view",
        )
        time.sleep(2.0)  # let the mesh upload and draw once
        rect = page.evaluate(
            "(() => { const r = document.querySelector('canvas').getBoundingClientRect();"
            " return [r.left, r.top, r.width, r.height]; })()"
        )
        x, y = rect[0] + rect[2] / 2, rect[1] + rect[3] / 2
        before = len(app.session.clicks)
        page.click(x, y)  # the centre of the session view: the scene's mesh
        _wait(lambda: len(app.session.clicks) == before + 1, 60, "the click to reach the session")
        page.wait_for("document.body.innerText.includes('Click at pixel')", 60, "the status to report the click")
        result = app.session.predict()
        assert result.mask.any(), "the click produced an empty mask"
        if app.teacher_label:
            assert page.evaluate("document.body.innerText.includes('UNTRAINED teacher')")
        time.sleep(1.0)  # the mask image reaches the panel
        # Close the "software WebGL" notice so that it does not cover the screenshot.
        page.evaluate("document.querySelectorAll('[class*=Notification] button').forEach(b => b.click())")
        time.sleep(0.5)
        shot = page.screenshot(shots / "viewer.png")
    assert shot.stat().st_size > 10_000
