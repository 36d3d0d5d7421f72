"""Image decoding, alpha compositing and header checks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from san.data.images import image_size, list_images, load_image
from san.data.scene import SceneError


def test_rgba_composited_on_background(tmp_path):
    rgba = np.zeros((4, 6, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[:, :3, 3] = 255  # left half opaque red, right half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png", background=(0.0, 0.0, 1.0))
    assert img.shape == (4, 6, 3) and img.dtype == np.float32
    assert np.allclose(img[:, :3], [1.0, 0.0, 0.0]) and np.allclose(img[:, 3:], [0.0, 0.0, 1.0])
    assert np.allclose(load_image(tmp_path / "a.png")[:, 3:], [1.0, 0.0, 0.0])  # alpha dropped


def test_grey_and_rgb(tmp_path):
    Image.new("L", (5, 3), 51).save(tmp_path / "g.png")
    Image.new("RGB", (5, 3), (0, 255, 102)).save(tmp_path / "c.jpg", quality=100)
    assert np.allclose(load_image(tmp_path / "g.png"), 0.2)
    assert load_image(tmp_path / "c.jpg").shape == (3, 5, 3)
    assert image_size(tmp_path / "g.png") == (5, 3)
    assert [p.name for p in list_images(tmp_path)] == ["c.jpg", "g.png"]


def test_missing_and_unreadable_images_name_the_file(tmp_path):
    with pytest.raises(SceneError, match=r"nope\.png: image file not found"):
        image_size(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(SceneError, match=r"bad\.png: cannot read image"):
        image_size(tmp_path / "bad.png")
    with pytest.raises(SceneError, match=r"bad\.png: cannot read image"):
        load_image(tmp_path / "bad.png")


def test_truncated_image_fails_on_decode(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    assert image_size(tmp_path / "t.png") == (64, 64)  # header alone is intact
    with pytest.raises(SceneError, match=r"t\.png: cannot decode image"):
        load_image(tmp_path / "t.png")
