"""scripts/convert_benchmark.py on synthetic NVOS and SPIn-NeRF folders built here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from san.data.gt_layout import read_layout
from tests.conftest import load_script


@pytest.fixture(scope="module")
def convert():
    return load_script("scripts/convert_benchmark.py")


def png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_nvos(convert, tmp_path):
    root = tmp_path / "NVOS"
    png(root / "reference_image" / "fern" / "image004.png", np.zeros((12, 16, 3), dtype=np.uint8))
    pos = np.zeros((12, 16), dtype=np.uint8)
    pos[6, 2:11] = 255  # stroke x = 2..10 -> centre 6.5 first, then 2.5 and 10.5 (tie: first in row-major order)
    neg = np.zeros((12, 16), dtype=np.uint8)
    neg[1, 14] = 255
    png(root / "scribbles" / "fern" / "pos_image004.png", pos)
    png(root / "scribbles" / "fern" / "neg_image004.png", neg)
    target = np.zeros((12, 16), dtype=np.uint8)
    target[3:9, 4:12] = 255
    png(root / "masks" / "fern" / "image017_mask.png", target)
    out = convert.main(
        ["nvos", "--root", str(root), "--scene", "fern", "--out", str(tmp_path / "bench"), "--points-per-scribble", "3"]
    )
    layout = read_layout(out)
    (t,) = layout.tasks
    assert (t.task, t.reference_view, t.targets, t.reference_size) == ("fern", "image004", ("image017",), (16, 12))
    assert t.points.tolist() == [[6.5, 6.5], [2.5, 6.5], [10.5, 6.5], [14.5, 1.5]]
    assert t.labels.tolist() == [1, 1, 1, 0]
    assert (layout.read_mask("fern", "image017") == (target > 0)).all()
    # view names are checked against a scene's cameras.json
    cams = tmp_path / "cameras.json"
    cams.write_text(json.dumps({"frames": [{"image": "images/image004.JPG"}]}))
    with pytest.raises(SystemExit, match="image017"):
        convert.main(
            ["nvos", "--root", str(root), "--scene", "fern", "--out", str(tmp_path / "b2"), "--cameras", str(cams)]
        )


def test_nvos_missing_folder_is_named(convert, tmp_path):
    with pytest.raises(SystemExit, match="scribbles"):
        (tmp_path / "N" / "reference_image" / "fern").mkdir(parents=True)
        convert.main(["nvos", "--root", str(tmp_path / "N"), "--scene", "fern", "--out", str(tmp_path / "o")])


def test_spinnerf(convert, tmp_path):
    scene = tmp_path / "spinnerf" / "book"
    for k, x0 in enumerate((2, 4, 6)):
        m = np.zeros((10, 20), dtype=np.uint8)
        m[2:7, x0 : x0 + 5] = 1  # SPIn-NeRF labels may be 0/1
        png(scene / "images_4" / "label" / f"img{k:02d}.png", m)
    out = convert.main(["spinnerf", "--scene-dir", str(scene), "--out", str(tmp_path / "bench"), "--box"])
    (t,) = read_layout(out).tasks
    assert (t.task, t.reference_view, t.targets) == ("book", "img00", ("img01", "img02"))
    assert t.points.tolist() == [[4.5, 4.5]] and t.labels.tolist() == [1]  # centre of the 5x5 block at x 2..6, y 2..6
    assert t.box == (2.0, 2.0, 7.0, 7.0)
    assert read_layout(out).read_mask("book", "img02")[2:7, 6:11].all()
