"""Rule function ``prepare_poses``: writes ``cameras.json`` only after everything validated."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from san.cameras import look_at
from san.data import llff
from san.data.scene import SceneError, load_scene
from san.pipeline.prepare_poses import prepare_poses


def _llff_scene(tmp_path, n_images=4):
    down = np.array([0.0, -1.0, 0.0])
    c2w = np.stack([look_at(np.array([x, 0.0, -4.0]), np.zeros(3), down) for x in (-1.5, -0.5, 0.5, 1.5)])
    llff.write_poses_bounds(tmp_path / "poses_bounds.npy", c2w, (12.0, 16.0, 14.0), np.tile([1.0, 9.0], (4, 1)))
    (tmp_path / "images_4").mkdir()
    for i in range(n_images):
        Image.new("RGB", (4, 3)).save(tmp_path / "images_4" / f"{i}.png")
    return tmp_path


def test_writes_cameras_json(tmp_path):
    out = tmp_path / "out" / "poses" / "cameras.json"
    scene = prepare_poses(_llff_scene(tmp_path), out)
    loaded = load_scene(out)
    assert loaded.scene_kind == "forward_facing" == scene.scene_kind
    assert loaded.source == scene.source and loaded.indices("test") == [0]
    for a, b in zip(loaded.frames, scene.frames):
        assert a.image == b.image and np.allclose(a.c2w, b.c2w) and np.allclose(a.K, b.K)
    assert np.allclose(loaded.normalization.transform, scene.normalization.transform)
    assert (loaded.frames[0].width, loaded.frames[0].height) == (4, 3)


def test_nothing_written_on_bad_input(tmp_path):
    out = tmp_path / "out" / "cameras.json"
    with pytest.raises(SceneError, match=r"4 poses but 3 images"):
        prepare_poses(_llff_scene(tmp_path, n_images=3), out)
    assert not out.exists()
