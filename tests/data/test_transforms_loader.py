"""``transforms*.json`` loading: Blender and nerfstudio / instant-ngp flavours."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from PIL import Image

from san.cameras import look_at
from san.data import transforms_json
from san.data.images import load_image
from san.data.scene import SceneError
from san.data.transforms_json import MissingFramesWarning

OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])


def _gl_pose(eye) -> list:
    c2w = look_at(np.array(eye, dtype=float), np.zeros(3), np.array([0.0, 0.0, 1.0]))
    return (c2w @ OPENCV_TO_OPENGL).tolist()


def _nerfstudio_scene(tmp_path, frames_on_disk=(0, 1, 2), extra=None):
    meta = {
        "camera_model": "OPENCV",
        "fl_x": 40.0,
        "fl_y": 42.0,
        "cx": 31.0,
        "cy": 25.0,
        "w": 64,
        "h": 48,
        "k1": 0.01,
        "k2": -0.002,
        "p1": 0.0005,
        "p2": 0.0,
        "frames": [
            {"file_path": "images/frame_00003.png", "transform_matrix": _gl_pose((3.0, 0.0, 1.0))},
            {
                "file_path": "images/frame_00001.png",
                "transform_matrix": _gl_pose((0.0, 3.0, 1.0)),
                "fl_x": 50.0,
                "k1": 0.1,
            },
            {"file_path": "images/frame_00002.png", "transform_matrix": _gl_pose((-3.0, 0.0, 1.0))},
            {"file_path": "images/frame_00004.png", "transform_matrix": _gl_pose((0.0, -3.0, 1.0))},
        ],
    }
    meta.update(extra or {})
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    (tmp_path / "images").mkdir()
    for i in frames_on_disk:
        Image.new("RGB", (32, 24)).save(tmp_path / meta["frames"][i]["file_path"])
    return meta


def test_nerfstudio_intrinsics_distortion_and_missing_frames(tmp_path):
    _nerfstudio_scene(tmp_path)
    with pytest.warns(MissingFramesWarning, match=r"transforms\.json: skipped 1 of 4 frames") as record:
        cap = transforms_json.load_transforms(tmp_path)
    assert len([w for w in record if issubclass(w.category, MissingFramesWarning)]) == 1
    assert cap.flavour == "nerfstudio" and not cap.own_splits and cap.skipped == 1
    names = [f.image.rsplit("/", 1)[-1] for f in cap.frames]
    assert names == ["frame_00001.png", "frame_00002.png", "frame_00003.png"]  # sorted by name
    per_frame, plain = cap.frames[0], cap.frames[1]
    # images on disk are half the declared 64x48: intrinsics halve.
    assert (plain.width, plain.height) == (32, 24)
    assert np.allclose(plain.K, [[20.0, 0, 15.5], [0, 21.0, 12.5], [0, 0, 1]])
    assert plain.distortion == {"k1": 0.01, "k2": -0.002, "k3": 0.0, "k4": 0.0, "p1": 0.0005, "p2": 0.0}
    assert per_frame.K[0, 0] == 25.0 and per_frame.K[1, 1] == 21.0 and per_frame.distortion["k1"] == 0.1


def test_opengl_poses_become_opencv(tmp_path):
    _nerfstudio_scene(tmp_path, frames_on_disk=(0, 1, 2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cap = transforms_json.load_transforms(tmp_path)
    for f in cap.frames:
        centre, forward, down = f.c2w[:3, 3], f.c2w[:3, 2], f.c2w[:3, 1]
        assert forward @ (-centre) / np.linalg.norm(centre) == pytest.approx(1.0)  # looks at the origin
        assert down[2] < 0  # world +z appears upwards in the image


def test_no_frames_left_is_an_error(tmp_path):
    _nerfstudio_scene(tmp_path, frames_on_disk=())
    with pytest.raises(SceneError, match=r"transforms\.json: none of the 4 frames has its image file on disk"):
        transforms_json.load_transforms(tmp_path)


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"camera_model": "OPENCV_FISHEYE"}, r"camera_model 'OPENCV_FISHEYE' is not supported"),
        ({"camera_model": "PINHOLE"}, r"camera_model PINHOLE cannot have distortion"),
        ({"fl_x": float("nan")}, r"fl_x=nan is not a finite number"),
    ],
)
def test_bad_intrinsics_name_file_and_frame(tmp_path, extra, message):
    _nerfstudio_scene(tmp_path, extra=extra)
    with pytest.raises(SceneError, match=r"transforms\.json \(frame \d, images/frame_0000\d\.png\): " + message):
        transforms_json.load_transforms(tmp_path)


def test_image_folder_replaces_images_component(tmp_path):
    _nerfstudio_scene(tmp_path, frames_on_disk=(0, 1, 2, 3))
    (tmp_path / "images_2").mkdir()
    for i in (1, 2, 3, 4):
        Image.new("RGB", (16, 12)).save(tmp_path / "images_2" / f"frame_{i:05d}.png")
    cap = transforms_json.load_transforms(tmp_path, image_folder="images_2")
    assert all("/images_2/" in f.image and f.width == 16 for f in cap.frames)
    assert cap.frames[1].K[0, 0] == pytest.approx(10.0)


@pytest.mark.shared_data
def test_lego(lego_dir):
    with pytest.warns(MissingFramesWarning) as record:
        cap = transforms_json.load_transforms(lego_dir)
    (warning,) = [w for w in record if issubclass(w.category, MissingFramesWarning)]
    assert "skipped 270 of 300 frames" in str(warning.message)  # val is not read
    assert cap.flavour == "blender" and cap.own_splits and cap.skipped == 270
    assert [f.split for f in cap.frames].count("train") == 25 and [f.split for f in cap.frames].count("test") == 5
    angle = json.loads((lego_dir / "transforms_train.json").read_text())["camera_angle_x"]
    focal = 0.5 * 800 / math.tan(0.5 * angle)
    for f in cap.frames:
        assert (f.width, f.height) == (800, 800)
        assert np.allclose(f.K, [[focal, 0, 400], [0, focal, 400], [0, 0, 1]])
        centre = f.c2w[:3, 3]
        assert f.c2w[:3, 2] @ (-centre) / np.linalg.norm(centre) > 0.99  # cameras look at the object


@pytest.mark.shared_data
def test_lego_rgba_composited(lego_dir):
    img = load_image(lego_dir / "train" / "r_0.png", background=(1.0, 0.0, 1.0))
    assert img.shape == (800, 800, 3)
    assert np.allclose(img[0, 0], [1.0, 0.0, 1.0])  # corner is transparent in the render
