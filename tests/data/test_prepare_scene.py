"""``prepare_scene``: format detection, validation, scene kind, normalisation and splits."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from san.cameras import Camera, look_at, orthonormality_error
from san.config import ConfigError
from san.data import colmap, llff
from san.data.colmap import ColmapCamera, ColmapPoint3D
from san.data.config import PreparePosesConfig
from san.data.prepare import assign_every_nth, axes_focus, detect_format, prepare_scene, rotation_between
from san.data.scene import Frame, SceneError
from san.data.transforms_json import MissingFramesWarning

FOCUS = np.array([1.0, -2.0, 0.5])
UP = np.array([0.0, 0.0, 1.0])


def _colmap_scene(tmp_path, eyes, target=FOCUS, points=None, qvec_of=None):
    c2ws = [look_at(np.asarray(e, float), target, UP) for e in eyes]
    images = [colmap.image_from_c2w(i + 1, c, 1, f"v{i:02d}.png") for i, c in enumerate(c2ws)]
    if qvec_of is not None:
        images = [qvec_of(im) for im in images]
    camera = ColmapCamera(1, "SIMPLE_PINHOLE", 16, 12, (14.0, 8.0, 6.0))
    colmap.write_model_text(tmp_path / "sparse" / "0", [camera], images, points)
    (tmp_path / "images").mkdir()
    for im in images:
        Image.new("RGB", (16, 12)).save(tmp_path / "images" / im.name)
    return np.stack(c2ws)


def _ring(n=12, radius=4.0):
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [FOCUS + radius * np.array([np.cos(a), np.sin(a), 0.4]) for a in angles]


def test_unbounded_colmap_ring(tmp_path):
    c2w_in = _colmap_scene(tmp_path, _ring())
    scene = prepare_scene(tmp_path)
    assert scene.scene_kind == "unbounded" and scene.source["format"] == "colmap"
    assert (scene.near, scene.far) == (0.05, 1000.0)
    c2w = np.stack([f.c2w for f in scene.frames])
    assert np.allclose(scene.normalization.to_normalized_points(FOCUS[None]), 0.0, atol=1e-9)
    assert np.linalg.norm(c2w[:, :3, 3], axis=1).max() == pytest.approx(1.0)
    assert np.allclose((-c2w[:, :3, 1]).mean(axis=0) / np.linalg.norm((-c2w[:, :3, 1]).mean(axis=0)), UP)
    assert np.allclose(scene.normalization.to_input_c2w(c2w), c2w_in, atol=1e-9)
    assert scene.indices("test") == [0, 8]


def test_forward_facing_colmap_bounds_from_points(tmp_path):
    eyes = [FOCUS + np.array([x, -6.0, y]) for x in (-0.5, 0.0, 0.5) for y in (-0.3, 0.3)]
    rng = np.random.default_rng(0)
    pts = FOCUS + rng.uniform(-1, 1, size=(200, 3)) * [1.0, 0.5, 0.5]
    _colmap_scene(tmp_path, eyes, points=[ColmapPoint3D(i + 1, tuple(p)) for i, p in enumerate(pts)])
    scene = prepare_scene(tmp_path, config=PreparePosesConfig(test_every=3))
    assert scene.scene_kind == "forward_facing"
    assert scene.near == pytest.approx(1 / 0.75)
    assert scene.far > scene.near
    assert scene.indices("test") == [0, 3]


def test_forward_facing_colmap_without_points_is_an_error(tmp_path):
    _colmap_scene(tmp_path, [FOCUS + np.array([x, -6.0, 0.0]) for x in (-0.5, 0.5)])
    (tmp_path / "sparse" / "0" / "points3D.txt").unlink()
    with pytest.raises(SceneError, match=r"points3D\.bin: not found"):
        prepare_scene(tmp_path)


def test_kind_override_and_bad_kind(tmp_path):
    _colmap_scene(tmp_path, _ring())
    with pytest.raises(SceneError, match=r"sparse/0/points3D\.txt: fewer than 2 sparse points"):
        prepare_scene(tmp_path, kind="forward_facing")
    with pytest.raises(SceneError, match=r"scene kind 'bounded' is not one of"):
        prepare_scene(tmp_path, kind="bounded")
    with pytest.raises(SceneError, match=r"format 'ply' is not one of"):
        prepare_scene(tmp_path, format="ply")


def test_nan_pose_names_frame(tmp_path):
    def break_third(im):
        return im if im.id != 3 else replace(im, qvec=(float("nan"), 0.0, 0.0, 0.0))

    _colmap_scene(tmp_path, _ring(4), qvec_of=break_third)
    with pytest.raises(SceneError, match=r"images\.txt: frame v02\.png: pose contains NaN"):
        prepare_scene(tmp_path)


def test_non_orthonormal_pose_names_frame(tmp_path):
    def scale_second(im):
        return im if im.id != 2 else replace(im, qvec=tuple(1.01 * np.asarray(im.qvec)))

    _colmap_scene(tmp_path, _ring(4), qvec_of=scale_second)
    with pytest.raises(SceneError, match=r"images\.txt: frame v01\.png: rotation is not orthonormal"):
        prepare_scene(tmp_path)


def test_nerfstudio_scale_in_pose_and_forced_kind(tmp_path):
    c2w = look_at(np.array([0.0, -3.0, 0.0]), np.zeros(3), UP) @ np.diag([1.0, -1.0, -1.0, 1.0])
    scaled = c2w.copy()
    scaled[:3, :3] *= 1.1
    frames = [{"file_path": f"images/f{i}.png", "transform_matrix": (c2w if i else scaled).tolist()} for i in range(2)]
    (tmp_path / "transforms.json").write_text(json.dumps({"fl_x": 10.0, "frames": frames}))
    (tmp_path / "images").mkdir()
    for i in range(2):
        Image.new("RGB", (8, 6)).save(tmp_path / "images" / f"f{i}.png")
    assert detect_format(tmp_path) == "nerfstudio"
    with pytest.raises(SceneError, match=r"transforms\.json: frame f0\.png: rotation is not orthonormal"):
        prepare_scene(tmp_path)
    with pytest.raises(SceneError, match=r"format 'blender' requested but the file is 'nerfstudio'"):
        prepare_scene(tmp_path, format="blender")


def test_detect_format_errors(tmp_path):
    with pytest.raises(SceneError, match=r"cannot detect the scene format"):
        detect_format(tmp_path)
    with pytest.raises(SceneError, match=r"scene folder not found"):
        prepare_scene(tmp_path / "missing")


def test_llff_image_count_checked_before_normalising(tmp_path):
    down = np.array([0.0, -1.0, 0.0])
    c2w = np.stack([look_at(np.array([x, 0.0, -4.0]), np.zeros(3), down) for x in (-1.0, 0.0, 1.0)])
    llff.write_poses_bounds(tmp_path / "poses_bounds.npy", c2w, (12.0, 16.0, 14.0), np.tile([1.0, 9.0], (3, 1)))
    (tmp_path / "images").mkdir()
    Image.new("RGB", (16, 12)).save(tmp_path / "images" / "a.png")
    with pytest.raises(SceneError, match=r"poses_bounds\.npy: 3 poses but 1 images"):
        prepare_scene(tmp_path)


def test_all_frames_held_out_is_an_error(tmp_path):
    _colmap_scene(tmp_path, _ring(3))
    with pytest.raises(SceneError, match=r"no training frames \(test_every=1"):
        prepare_scene(tmp_path, config=PreparePosesConfig(test_every=1))


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"test_every": -1}, "test_every"),
        ({"background": (2.0, 0.0, 0.0)}, "background"),
        ({"unbounded_near": 5.0, "unbounded_far": 1.0}, "unbounded_near"),
    ],
)
def test_config_validation(kwargs, key):
    with pytest.raises(ConfigError, match=rf"poses\.{key}"):
        PreparePosesConfig(**kwargs)


def test_helpers():
    rng = np.random.default_rng(1)
    for a in [*rng.normal(size=(5, 3)), (0.0, 0.0, -1.0)]:
        a = np.asarray(a) / np.linalg.norm(a)
        R = rotation_between(a, UP)
        assert np.allclose(R @ a, UP) and orthonormality_error(R) < 1e-9 and np.linalg.det(R) > 0
    down = np.array([0.0, -1.0, 0.0])
    parallel = np.stack([look_at(np.array([x, 0.0, 0.0]), np.array([x, 0.0, 5.0]), down) for x in (0.0, 2.0)])
    assert np.allclose(axes_focus(parallel), [1.0, 0.0, 0.0])  # no common focus: mean centre
    frames = tuple(Frame(f"{i}.png", Camera(np.eye(4), np.eye(3), 4, 3)) for i in range(17))
    assert [i for i, f in enumerate(assign_every_nth(frames, 8)) if f.split == "test"] == [0, 8, 16]
    assert {f.split for f in assign_every_nth(frames, 0)} == {"train"}


def test_unreadable_image_names_file(tmp_path):
    _colmap_scene(tmp_path, _ring(3))
    (tmp_path / "images" / "v01.png").write_bytes(b"garbage")
    with pytest.raises(SceneError, match=r"images/v01\.png: cannot read image"):
        prepare_scene(tmp_path)


def test_unsupported_camera_model_names_file(tmp_path):
    _colmap_scene(tmp_path, _ring(3))
    cameras = tmp_path / "sparse" / "0" / "cameras.txt"
    text = cameras.read_text().replace("SIMPLE_PINHOLE 16 12 14.0 8.0 6.0", "FOV 16 12 14.0 14.0 8.0 6.0 0.1")
    cameras.write_text(text)
    with pytest.raises(SceneError, match=r"cameras\.txt: camera 1 uses camera model 'FOV', which is not supported"):
        prepare_scene(tmp_path)


def test_no_registered_images(tmp_path):
    colmap.write_model_binary(tmp_path / "sparse" / "0", [ColmapCamera(1, "PINHOLE", 4, 3, (3.0, 3.0, 2.0, 1.5))], [])
    with pytest.raises(SceneError, match=r"images\.bin: no registered images"):
        prepare_scene(tmp_path)
    np.save(tmp_path / "poses_bounds.npy", np.zeros((0, 17)))
    with pytest.raises(SceneError, match=r"poses_bounds\.npy: no poses"):
        prepare_scene(tmp_path)


@pytest.mark.shared_data
def test_fern(fern_dir):
    scene = prepare_scene(fern_dir)
    assert scene.scene_kind == "forward_facing" and scene.source["format"] == "llff"
    assert scene.indices("test") == [0, 8, 16] and len(scene.train_frames) == 17
    c2w = np.stack([f.c2w for f in scene.frames])
    assert np.allclose(c2w[:, :3, 3].mean(axis=0), 0.0, atol=1e-9)
    mean_forward = c2w[:, :3, 2].sum(axis=0)
    assert np.allclose(mean_forward / np.linalg.norm(mean_forward), [0, 0, 1], atol=1e-9)
    assert c2w[:, 1, 1].mean() > 0.9  # image-down along +y
    assert scene.near == pytest.approx(1 / 0.75)
    bounds = np.load(fern_dir / "poses_bounds.npy")[:, 15:]
    assert scene.far == pytest.approx(bounds[:, 1].max() / (0.75 * bounds[:, 0].min()))
    cap = llff.load_llff(fern_dir)
    c2w_in = np.stack([f.c2w for f in cap.frames])
    norm = scene.normalization
    assert np.allclose(norm.to_input_c2w(norm.to_normalized_c2w(c2w_in)), c2w_in, atol=1e-9)
    assert np.allclose(norm.to_normalized_c2w(c2w_in), c2w, atol=1e-9)
    assert orthonormality_error(c2w[:, :3, :3]) < 1e-9
    assert prepare_scene(fern_dir, kind="unbounded").scene_kind == "unbounded"


@pytest.mark.shared_data
def test_lego(lego_dir):
    with pytest.warns(MissingFramesWarning):
        scene = prepare_scene(lego_dir, config=PreparePosesConfig(background=(0.0, 0.0, 0.0)))
    assert scene.scene_kind == "unbounded" and scene.source["format"] == "blender"
    assert scene.source["skipped_frames"] == 270 and scene.source["background"] == [0.0, 0.0, 0.0]
    assert len(scene.train_frames) == 25 and len(scene.test_frames) == 5
    c2w = np.stack([f.c2w for f in scene.frames])
    assert np.linalg.norm(c2w[:, :3, 3], axis=1).max() == pytest.approx(1.0)
    # the object at the input origin stays near the normalised origin
    assert np.linalg.norm(scene.normalization.to_normalized_points(np.zeros((1, 3)))) < 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingFramesWarning)
        assert prepare_scene(lego_dir, format="blender").source["format"] == "blender"
