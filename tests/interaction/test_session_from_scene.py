"""SegmentationSession.from_scene wiring: stage files, NeRF / imitation loaders, teacher decoder.

The NeRF and the imitation field are replaced by stand-ins (a mesh renderer and random feature
maps) through their loaders, so this checks the wiring, not the models; the teacher is the real
TOY multi-scale teacher (two feature maps).
"""

from __future__ import annotations

import pytest
import torch

import san.imitation.model
import san.imitation.render
import san.models.nerf
from san.cameras import Camera
from san.data.scene import Frame, Normalization, Scene, save_scene
from san.interaction.session import SegmentationSession
from san.layout import MissingStageError
from san.teachers import ToyMultiScaleTeacher
from san.teachers.toy import TOY_NAME


class FakeNeRF:
    def __init__(self, renderer):
        self.renderer = renderer

    def eval(self):
        return self

    def render_camera(self, camera, chunk=None):
        assert isinstance(camera, Camera) and not camera.batched
        return self.renderer(camera)


class FakeField:
    def __init__(self, feature_shapes, mesh_surface=False):
        self.feature_shapes = feature_shapes
        self.mesh_surface = mesh_surface
        self.metadata = {"teacher": TOY_NAME}


@pytest.fixture
def scene_dir(tmp_path, make_camera, make_square, mesh_renderer, monkeypatch):
    c2w, K, W, H = make_camera((0.0, 0.0, 4.0))
    c2w_b, _, _, _ = make_camera((1.0, 0.5, 4.0))
    frames = (Frame("a.png", Camera(c2w, K, W, H)), Frame("b.png", Camera(c2w_b, K, W, H)))
    folder = tmp_path / "results" / "demo" / "toy"
    save_scene(Scene(frames, "unbounded", 0.1, 10.0, Normalization.identity()), folder / "poses" / "cameras.json")
    for rel in ("nerf/model.pt", "imitation/full/field.pt"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(b"")
    renderer = mesh_renderer(make_square(6.0, 0.0, subdivisions=2))
    monkeypatch.setattr(san.models.nerf, "load_nerf", lambda path, device: FakeNeRF(renderer))
    return folder


def test_from_scene_wires_nerf_field_and_teacher(scene_dir, monkeypatch):
    teacher = ToyMultiScaleTeacher()
    calls = []

    def fake_render_features(nerf, field, c2w, K, width, height, feature_hw=None, mesh=None):
        calls.append((width, height, feature_hw, mesh))
        g = torch.Generator().manual_seed(0)
        return [torch.randn(c, h, w, generator=g) for c, h, w in field.feature_shapes]

    monkeypatch.setattr(
        san.imitation.model, "load_imitation", lambda path, device: FakeField(teacher.info.feature_shapes)
    )
    monkeypatch.setattr(san.imitation.render, "render_features", fake_render_features)
    session = SegmentationSession.from_scene(scene_dir, teacher=teacher, device="cpu")
    assert len(session.views) == 2
    session.set_view(0)
    session.add_click(20.5, 20.5)
    session.set_view(1)
    result = session.predict()
    assert result.mask.shape == (48, 64) and result.mask.dtype == torch.bool
    assert isinstance(result.score, float) and result.prompts.click_status == ("visible",)
    assert calls == [(64, 48, None, None)]


def test_scene_parts_take_a_camera_and_declare_text_support(scene_dir, monkeypatch):
    """The parts' ``render_fn`` / ``features_fn`` take one Camera (the features on the field's
    device, at the camera's size); ``supports_text`` is the teacher's."""
    from san.trained_scene import scene_parts

    teacher = ToyMultiScaleTeacher()
    calls = []

    def fake_render_features(nerf, field, c2w, K, width, height, feature_hw=None, mesh=None):
        calls.append((c2w.dtype, K.shape, width, height))
        return [torch.zeros(c, h, w) for c, h, w in field.feature_shapes]

    monkeypatch.setattr(
        san.imitation.model, "load_imitation", lambda path, device: FakeField(teacher.info.feature_shapes)
    )
    monkeypatch.setattr(san.imitation.render, "render_features", fake_render_features)
    parts = scene_parts(scene_dir, teacher=teacher, device="cpu")
    assert parts.supports_text is False
    camera = parts.scene.frames[1].camera.resized(32)
    assert parts.render_fn(camera)["depth"].shape == (24, 32)
    assert len(parts.features_fn(camera)) == 2 and calls == [(torch.float32, (3, 3), 32, 24)]
    with pytest.raises(TypeError, match="takes one san.cameras.Camera"):
        parts.features_fn(parts.scene.frames[1])
    teacher.supports_text = True  # a teacher with a text head (SAM 3)
    assert scene_parts(scene_dir, teacher=teacher, device="cpu").supports_text is True


def test_from_scene_rejects_a_teacher_of_other_feature_shapes(scene_dir, monkeypatch):
    monkeypatch.setattr(san.imitation.model, "load_imitation", lambda path, device: FakeField(((256, 64, 64),)))
    with pytest.raises(ValueError, match="pass the teacher the field was trained with"):
        SegmentationSession.from_scene(scene_dir, teacher=ToyMultiScaleTeacher(), device="cpu")


def test_mesh_surface_variant_needs_the_mesh(scene_dir, monkeypatch):
    teacher = ToyMultiScaleTeacher()
    monkeypatch.setattr(
        san.imitation.model,
        "load_imitation",
        lambda path, device: FakeField(teacher.info.feature_shapes, mesh_surface=True),
    )
    with pytest.raises(MissingStageError, match=r"mesh/mesh_normalized.ply \(made by rule extract_mesh\)"):
        SegmentationSession.from_scene(scene_dir, teacher=teacher, device="cpu")


def test_from_scene_names_missing_stage(tmp_path):
    with pytest.raises(MissingStageError) as e:
        SegmentationSession.from_scene(tmp_path / "nowhere", variant="no_aug", device="cpu")
    msg = str(e.value)
    assert "poses/cameras.json (made by rule prepare_poses)" in msg
    assert "imitation/no_aug/field.pt (made by rule train_imitation)" in msg
    assert msg.count("made by rule") == 3
