"""A viewer on a tiny synthetic scene (a box seen by a ring of cameras) with the session's stand-in
parts of ``conftest.py``: the real viser server and GUI, no trained model needed."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import trimesh

from san.cameras import Camera, intrinsics_matrix, look_at
from san.interaction.session import SegmentationSession
from san.teachers.base import TeacherInfo
from tests.conftest import DiskDecoder, MeshRenderer, features_stub

TEACHER = TeacherInfo("fake_untrained", 64, ((4, 8, 8),), untrained=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stub_scene(n: int = 8, width: int = 96, height: int = 72):
    """``(mesh, cameras, scene)``: a unit box, ``n`` cameras on a ring at radius 4 (z up) looking
    at it, and a scene-like object with ``frames`` (every fourth one held out) and ``indices``."""
    mesh = trimesh.creation.box(extents=[1.0, 1.0, 1.0])
    cameras = []
    for i in range(n):
        a = 2 * np.pi * i / n
        eye = np.array([4 * np.cos(a), 4 * np.sin(a), 1.5])
        K = intrinsics_matrix(80.0, 80.0, width / 2, height / 2)
        cameras.append(Camera(look_at(eye, np.zeros(3), np.array([0.0, 0.0, 1.0])), K, width, height))
    frames = [
        SimpleNamespace(c2w=c.c2w, split="test" if i % 4 == 3 else "train", image=f"view_{i:02d}.png")
        for i, c in enumerate(cameras)
    ]
    scene = SimpleNamespace(
        frames=frames,
        indices=lambda split: [i for i, f in enumerate(frames) if f.split == split],
        normalization=None,
    )
    return mesh, cameras, scene


def start_stub_viewer(out_dir: Path, port: int | None = None, text_prompts: bool = False):
    """``(server, app)``: a real ``viser.ViserServer`` on ``127.0.0.1:port`` with a ViewerApp."""
    import viser

    from san.interaction.viewer import ViewerApp

    mesh, cameras, scene = stub_scene()
    session = SegmentationSession(MeshRenderer(mesh), features_stub, DiskDecoder(radius=10.0), cameras)
    server = viser.ViserServer(host="127.0.0.1", port=port or free_port(), verbose=False)
    app = ViewerApp(
        server,
        session,
        scene,
        mesh,
        out_dir,
        render_size=96,
        initial_view=0,
        teacher_info=TEACHER,
        text_prompts=text_prompts,
    )
    return server, app
