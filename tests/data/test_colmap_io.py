"""COLMAP model reading/writing (text and binary) and COLMAP scene loading."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from san.cameras import look_at, orthonormality_error
from san.data import colmap
from san.data.colmap import ColmapCamera, ColmapImage, ColmapPoint3D
from san.data.scene import SceneError

CAMERAS = [
    ColmapCamera(1, "PINHOLE", 32, 24, (30.0, 31.0, 16.0, 12.0)),
    ColmapCamera(2, "OPENCV", 32, 24, (30.0, 30.5, 15.5, 12.5, 0.05, -0.01, 0.001, -0.002)),
]


def _images() -> list[ColmapImage]:
    eyes = [(0.0, -3.0, 0.5), (2.0, -2.0, 0.3), (-2.0, -2.5, 0.0)]
    c2ws = [look_at(np.array(e), np.zeros(3), np.array([0.0, 0.0, 1.0])) for e in eyes]
    return [colmap.image_from_c2w(i + 1, c2w, 1 + i % 2, f"im{2 - i}.png") for i, c2w in enumerate(c2ws)]


POINTS = [ColmapPoint3D(7, (0.1, 0.2, 0.3), (10, 20, 30), 0.25, ((1, 0), (2, 5))), ColmapPoint3D(9, (0.0, 0.0, 0.0))]


def _scene(tmp_path, binary: bool, folder: str = "images", size=(32, 24)):
    writer = colmap.write_model_binary if binary else colmap.write_model_text
    writer(tmp_path / "sparse" / "0", CAMERAS, _images(), POINTS)
    (tmp_path / folder).mkdir()
    for im in _images():
        Image.new("RGB", size, (100, 150, 200)).save(tmp_path / folder / im.name)
    return tmp_path


def test_quaternion_round_trip():
    rng = np.random.default_rng(0)
    for q in [*rng.normal(size=(20, 4)), (0.0, 1.0, 0.0, 0.0), (1e-9, 0.0, 0.0, 1.0)]:
        q = np.asarray(q) / np.linalg.norm(q)
        q = -q if q[0] < 0 else q
        R = colmap.qvec_to_rotmat(q)
        assert orthonormality_error(R) < 1e-12
        assert np.allclose(colmap.qvec_to_rotmat(colmap.rotmat_to_qvec(R)), R, atol=1e-12)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_model_round_trip(tmp_path, binary):
    writer = colmap.write_model_binary if binary else colmap.write_model_text
    writer(tmp_path, CAMERAS, _images(), POINTS)
    model = colmap.read_model(tmp_path, with_points=True)
    assert model.cameras == {c.id: c for c in CAMERAS}
    assert model.images == {im.id: im for im in _images()}
    assert model.points == {p.id: p for p in POINTS}
    ext = ".bin" if binary else ".txt"
    assert {p.name for p in tmp_path.iterdir()} == {f"cameras{ext}", f"images{ext}", f"points3D{ext}"}


def test_text_images_with_2d_points_and_blank_lines(tmp_path):
    (tmp_path / "cameras.txt").write_text("# c\n1 SIMPLE_PINHOLE 10 8 9.0 5.0 4.0\n")
    (tmp_path / "images.txt").write_text(
        "# header\n1 1 0 0 0 0 0 0 1 a.png\n1.0 2.0 -1 3.0 4.0 7\n2 1 0 0 0 1 2 3 1 b.png\n\n"
    )
    images = colmap.read_images(tmp_path / "images.txt")
    assert [im.name for im in images.values()] == ["a.png", "b.png"]
    assert images[2].tvec == (1.0, 2.0, 3.0)


@pytest.mark.parametrize(
    "model, params, expected_K, expected_dist",
    [
        ("SIMPLE_PINHOLE", (100.0, 50.0, 40.0), (100, 100, 50, 40), {}),
        ("PINHOLE", (100.0, 90.0, 50.0, 40.0), (100, 90, 50, 40), {}),
        ("SIMPLE_RADIAL", (100.0, 50.0, 40.0, 0.1), (100, 100, 50, 40), {"k1": 0.1}),
        ("RADIAL", (100.0, 50.0, 40.0, 0.1, 0.02), (100, 100, 50, 40), {"k1": 0.1, "k2": 0.02}),
        (
            "OPENCV",
            (100.0, 90.0, 50.0, 40.0, 0.1, 0.02, 0.003, 0.004),
            (100, 90, 50, 40),
            {"k1": 0.1, "k2": 0.02, "p1": 0.003, "p2": 0.004},
        ),
    ],
)
def test_camera_models(model, params, expected_K, expected_dist):
    K, dist = colmap.camera_intrinsics(ColmapCamera(1, model, 100, 80, params))
    assert (K[0, 0], K[1, 1], K[0, 2], K[1, 2]) == expected_K
    assert {k: v for k, v in dist.items() if v} == expected_dist


def test_unsupported_camera_model_names_file():
    cam = ColmapCamera(3, "OPENCV_FISHEYE", 10, 10, (1.0,) * 8)
    with pytest.raises(SceneError, match=r"cams\.bin.*OPENCV_FISHEYE.*not supported"):
        colmap.camera_intrinsics(cam, "cams.bin")


def test_unknown_model_name_in_text(tmp_path):
    (tmp_path / "cameras.txt").write_text("1 WEIRD 10 8 9.0 5.0 4.0\n")
    with pytest.raises(SceneError, match=r"cameras\.txt.*unknown camera model 'WEIRD'"):
        colmap.read_cameras(tmp_path / "cameras.txt")


def test_truncated_binary_names_file(tmp_path):
    colmap.write_model_binary(tmp_path, CAMERAS, _images())
    data = (tmp_path / "images.bin").read_bytes()
    (tmp_path / "images.bin").write_bytes(data[:-20])
    with pytest.raises(SceneError, match=r"images\.bin.*truncated"):
        colmap.read_images(tmp_path / "images.bin")


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_load_colmap_scene(tmp_path, binary):
    cap = colmap.load_colmap(_scene(tmp_path, binary))
    assert [f.image.rsplit("/", 1)[-1] for f in cap.frames] == ["im0.png", "im1.png", "im2.png"]
    by_name = {im.name: im for im in _images()}
    for f in cap.frames:
        im = by_name[f.image.rsplit("/", 1)[-1]]
        assert np.allclose(np.linalg.inv(f.c2w)[:3, :3], colmap.qvec_to_rotmat(im.qvec))
        assert np.allclose(f.c2w[:3, :3].T @ -f.c2w[:3, 3], im.tvec)
        assert (f.width, f.height) == (32, 24)
    opencv_frame = next(f for f in cap.frames if f.image.endswith("im1.png"))  # image id 2 -> camera 2
    assert opencv_frame.distortion["k1"] == 0.05 and opencv_frame.distortion["p2"] == -0.002
    assert opencv_frame.K[1, 1] == 30.5


def test_downscaled_image_folder_scales_intrinsics(tmp_path):
    _scene(tmp_path, binary=True, folder="images_2", size=(16, 12))
    cap = colmap.load_colmap(tmp_path)  # no images/: falls back to images_2
    f = next(f for f in cap.frames if f.image.endswith("im2.png"))  # camera 1
    assert (f.width, f.height) == (16, 12)
    assert np.allclose(f.K, [[15.0, 0, 8.0], [0, 15.5, 6.0], [0, 0, 1]])


def test_colmap_sparse_layout_and_missing_image(tmp_path):
    colmap.write_model_text(tmp_path / "colmap_sparse" / "0", CAMERAS, _images())
    (tmp_path / "images").mkdir()
    for im in _images()[1:]:
        Image.new("RGB", (32, 24)).save(tmp_path / "images" / im.name)
    with pytest.raises(SceneError, match=r"images/im2\.png: image file not found"):
        colmap.load_colmap(tmp_path)


def test_image_with_unknown_camera(tmp_path):
    colmap.write_model_text(tmp_path / "sparse" / "0", CAMERAS[:1], _images())
    (tmp_path / "images").mkdir()
    with pytest.raises(SceneError, match=r"images\.txt.*refers to camera 2"):
        colmap.load_colmap(tmp_path)


@pytest.mark.shared_data
def test_fern_cameras_bin(fern_dir):
    (cam,) = colmap.read_cameras(fern_dir / "sparse" / "0" / "cameras.bin").values()
    assert (cam.model, cam.width, cam.height) == ("SIMPLE_RADIAL", 4032, 3024)
    with pytest.raises(SceneError, match=r"sparse/0/images\.bin: not found"):
        colmap.load_colmap(fern_dir)
