"""The ground-truth layout: write / read round trip, clear errors, the deterministic prompt rules."""

from __future__ import annotations

import json

import numpy as np
import pytest

from san.data.gt_layout import (
    BenchmarkTask,
    LayoutError,
    mask_to_click,
    read_layout,
    scribble_to_points,
    write_layout,
)


def task(**kw):
    args = dict(
        task="obj",
        reference_view="v1",
        reference_size=(6, 4),
        points=np.array([[2.5, 1.5], [0.5, 0.5]]),
        labels=np.array([1, 0]),
        box=None,
        targets=("v0", "v2"),
    )
    args.update(kw)
    return BenchmarkTask(**args)


def masks():
    m = np.zeros((4, 6), dtype=bool)
    m[1:3, 2:4] = True
    return {"obj": {"v0": m, "v2": ~m, "v1": m}}


def test_round_trip(tmp_path):
    out = write_layout(tmp_path / "bench", [task(box=(1.0, 0.0, 5.0, 4.0))], masks(), name="toy", source="test")
    layout = read_layout(out)
    t = layout.tasks[0]
    assert (layout.name, layout.source) == ("toy", "test")
    assert t.reference_view == "v1" and t.targets == ("v0", "v2") and t.box == (1.0, 0.0, 5.0, 4.0)
    assert t.points.tolist() == [[2.5, 1.5], [0.5, 0.5]] and t.labels.tolist() == [1, 0]
    assert (layout.read_mask("obj", "v0") == masks()["obj"]["v0"]).all()
    assert (layout.read_mask("obj", "v2") == ~masks()["obj"]["v0"]).all()
    assert layout.views() == ["v0", "v1", "v2"]
    layout.check_views(["v0", "v1", "v2", "v3"])
    with pytest.raises(LayoutError, match="obj: v2"):
        layout.check_views(["v0", "v1"])
    assert not any(p.name.startswith(".bench") for p in tmp_path.iterdir())  # no temporary left


def test_errors_name_the_file_and_problem(tmp_path):
    with pytest.raises(LayoutError, match="prompts.json: benchmark prompts file not found"):
        read_layout(tmp_path)
    out = write_layout(tmp_path / "b", [task()], masks(), name="toy", source="test")
    (out / "masks" / "obj" / "v2.png").unlink()
    with pytest.raises(LayoutError, match=r"missing: .*v2\.png"):
        read_layout(out)
    data = json.loads((out / "prompts.json").read_text())
    data["tasks"][0]["labels"] = [1, 2]
    data["tasks"][0]["targets"] = ["v1"]
    (out / "prompts.json").write_text(json.dumps(data))
    with pytest.raises(LayoutError, match="labels must be 0 or 1.*also a target"):
        read_layout(out, check_files=False)
    with pytest.raises(LayoutError, match="no mask for target view"):
        write_layout(tmp_path / "c", [task(targets=("v0", "v9"))], masks(), name="toy", source="test")
    with pytest.raises(LayoutError, match=r"points must lie in \[0, W\)"):
        write_layout(
            tmp_path / "d", [task(points=np.array([[6.5, 1.0], [0.5, 0.5]]))], masks(), name="toy", source="test"
        )


def test_scribble_to_points_rule():
    s = np.zeros((5, 10), dtype=bool)
    s[2, :] = True  # a horizontal stroke, pixel centres x = 0.5 .. 9.5, centroid x = 5.0
    # nearest to the centroid: 4.5 and 5.5 tie -> 4.5 (first in row-major order); then farthest: 9.5, then 0.5
    assert scribble_to_points(s, 3).tolist() == [[4.5, 2.5], [9.5, 2.5], [0.5, 2.5]]
    assert scribble_to_points(s, 3).tolist() == scribble_to_points(s.copy(), 3).tolist()
    assert scribble_to_points(s, 50).shape == (10, 2)
    assert scribble_to_points(np.zeros((3, 3), dtype=bool)).shape == (0, 2)


def test_mask_to_click_rule():
    m = np.zeros((7, 9), dtype=bool)
    m[1:6, 2:7] = True  # 5x5 block, centre pixel (4, 3)
    assert mask_to_click(m) == (4.5, 3.5)
    m2 = np.ones((2, 4), dtype=bool)  # touches the border: the border counts as background; ties -> first
    assert mask_to_click(m2) == (0.5, 0.5)  # every pixel is 1 from the border: the first wins
    with pytest.raises(ValueError, match="empty"):
        mask_to_click(np.zeros((2, 2), dtype=bool))
