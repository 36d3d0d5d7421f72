"""LLFF ``poses_bounds.npy`` loading: axis conventions, intrinsics scaling, image folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from san.cameras import look_at, orthonormality_error, project_points
from san.data import colmap, llff
from san.data.images import resolve_image_folder
from san.data.scene import SceneError


def _ring_c2w(n: int) -> np.ndarray:
    eyes = [(0.3 * np.cos(a), 0.2 * np.sin(a), -4.0) for a in np.linspace(0, 2 * np.pi, n, endpoint=False)]
    return np.stack([look_at(np.array(e), np.zeros(3), np.array([0.0, -1.0, 0.0])) for e in eyes])


def _llff_scene(tmp_path, n=3, folder="images_4", size=(20, 15), n_images=None):
    c2w = _ring_c2w(n)
    llff.write_poses_bounds(tmp_path / "poses_bounds.npy", c2w, (60.0, 80.0, 70.0), np.tile([2.0, 6.0], (n, 1)))
    (tmp_path / folder).mkdir()
    for i in range(n if n_images is None else n_images):
        Image.new("RGB", size).save(tmp_path / folder / f"img{i:03d}.png")
    return c2w


def test_llff_axes_convert_to_opencv():
    # LLFF columns (down, right, back) of an identity-looking camera.
    down, right, back = np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    pose = np.stack([down, right, back, [1.0, 2.0, 3.0]], axis=1)
    c2w = llff.llff_to_opencv(pose)
    assert np.allclose(c2w[:3, 0], right) and np.allclose(c2w[:3, 1], down) and np.allclose(c2w[:3, 2], -back)
    assert np.linalg.det(c2w[:3, :3]) > 0
    assert np.allclose(llff.opencv_to_llff(c2w), pose)


def test_point_in_front_of_llff_camera_has_positive_depth(tmp_path):
    c2w = _llff_scene(tmp_path)
    cap = llff.load_llff(tmp_path)
    assert np.allclose(np.stack([f.c2w for f in cap.frames]), c2w)
    raw = np.load(tmp_path / "poses_bounds.npy")[0, :15].reshape(3, 5)
    centre, back = raw[:, 3], raw[:, 2]
    point = torch.tensor(centre - 3.0 * back)[None]  # LLFF looks along -back
    f = cap.frames[0]
    uv, z = project_points(point, torch.tensor(f.c2w), torch.tensor(f.K))
    assert z.item() == pytest.approx(3.0)
    assert np.allclose(uv.numpy(), [[f.width / 2, f.height / 2]])


def test_intrinsics_scaled_to_images_on_disk(tmp_path):
    _llff_scene(tmp_path)
    cap = llff.load_llff(tmp_path)
    assert cap.image_folder.name == "images_4"
    f = cap.frames[0]
    assert (f.width, f.height) == (20, 15)
    assert np.allclose(f.K, [[17.5, 0, 10.0], [0, 17.5, 7.5], [0, 0, 1]])
    assert np.allclose(cap.bounds, [[2.0, 6.0]] * 3)


def test_image_count_mismatch_names_pose_file(tmp_path):
    _llff_scene(tmp_path, n_images=2)
    with pytest.raises(SceneError, match=r"poses_bounds\.npy: 3 poses but 2 images in .*images_4"):
        llff.load_llff(tmp_path)


def test_bad_array_shape(tmp_path):
    np.save(tmp_path / "poses_bounds.npy", np.zeros((3, 15)))
    with pytest.raises(SceneError, match=r"poses_bounds\.npy: expected an Nx17 array"):
        llff.load_llff(tmp_path)


def test_invalid_bounds(tmp_path):
    _llff_scene(tmp_path)
    arr = np.load(tmp_path / "poses_bounds.npy")
    arr[1, 15:] = [5.0, 1.0]
    np.save(tmp_path / "poses_bounds.npy", arr)
    with pytest.raises(SceneError, match=r"row 1 \(img001\.png\) has invalid bounds"):
        llff.load_llff(tmp_path)


def test_wrong_aspect_ratio_names_image(tmp_path):
    _llff_scene(tmp_path, size=(20, 20))
    with pytest.raises(SceneError, match=r"img000\.png: image is 20x20 but its camera is 80x60"):
        llff.load_llff(tmp_path)


def test_image_folder_choice(tmp_path):
    for name in ("images_8", "images_2", "images_x"):
        (tmp_path / name).mkdir()
    assert resolve_image_folder(tmp_path).name == "images_2"
    assert resolve_image_folder(tmp_path, "images_8").name == "images_8"
    (tmp_path / "images").mkdir()
    assert resolve_image_folder(tmp_path).name == "images"
    with pytest.raises(SceneError, match=r"images_4: configured image_folder 'images_4' not found"):
        resolve_image_folder(tmp_path, "images_4")


@pytest.mark.shared_data
def test_fern_intrinsics_agree_with_colmap(fern_dir):
    cap = llff.load_llff(fern_dir)
    assert len(cap.frames) == 20 and cap.image_folder.name == "images_8"
    (cam,) = colmap.read_cameras(fern_dir / "sparse" / "0" / "cameras.bin").values()
    K_colmap, _ = colmap.camera_intrinsics(cam)
    for f in cap.frames:
        assert (f.width, f.height) == (504, 378)
        K_ref = K_colmap * np.array([[504 / cam.width], [378 / cam.height], [1.0]])
        assert np.allclose(f.K, K_ref, rtol=0.005)
        assert orthonormality_error(f.c2w[:3, :3]) < 1e-3
        assert np.linalg.det(f.c2w[:3, :3]) > 0
    assert np.all(cap.bounds[:, 0] > 0) and np.all(cap.bounds[:, 1] > cap.bounds[:, 0])
