"""scripts/eval_benchmark_prompt_ceiling.py: the prompts it makes from a ground-truth mask, its summary."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_script


def _load():
    return load_script("scripts/eval_benchmark_prompt_ceiling.py")


def _band():
    mask = np.zeros((20, 30), dtype=bool)
    mask[4:11, 6:21] = True  # rows 4..10, columns 6..20: 7 x 15 pixels
    return mask


def test_ground_truth_click_and_box_by_hand():
    module = _load()
    click = module.gt_prompt("click", _band())
    # the deepest pixel of a 7-row band is on its middle row (7); ties along it: the first column
    # at the largest distance (4 from the background column 5 -> column 9), centre +0.5
    assert click.box is None
    assert click.points.tolist() == [[9.5, 7.5]] and click.labels.tolist() == [1]
    box = module.gt_prompt("box", _band())
    assert box.points.shape == (0, 2)
    assert box.box.tolist() == [6.0, 4.0, 21.0, 11.0]  # corners: x0, y0, x1 = last column + 1, y1


def test_points_start_with_the_click_and_stay_inside():
    module = _load()
    mask = _band()
    pts = module.gt_prompt("points", mask, max_points=4)
    assert pts.box is None and pts.labels.tolist() == [1, 1, 1, 1]
    assert pts.points[0].tolist() == [9.5, 7.5]
    xy = pts.points.numpy().astype(int)
    assert mask[xy[:, 1], xy[:, 0]].all() and len({tuple(p) for p in xy.tolist()}) == 4
    both = module.gt_prompt("box_points", mask, max_points=4)
    assert both.points.tolist() == pts.points.tolist() and both.box.tolist() == [6.0, 4.0, 21.0, 11.0]
    with pytest.raises(ValueError, match="not one of"):
        module.gt_prompt("scribble", mask)


def test_summary_counts_targets_only_and_means_per_task_first():
    rows = [
        {"task": "a", "role": "reference", "source": "teacher", "prompt": "box", "iou": 0.0},
        {"task": "a", "role": "target", "source": "teacher", "prompt": "box", "iou": 1.0},
        {"task": "a", "role": "target", "source": "teacher", "prompt": "box", "iou": 0.5},
        {"task": "b", "role": "target", "source": "teacher", "prompt": "box", "iou": 0.25},
        {"task": "a", "role": "target", "source": "imitation", "prompt": "click", "iou": 0.2},
    ]
    out = _load().summarize(rows, ["a", "b"])
    assert out["teacher/box"]["tasks"] == {"a": 0.75, "b": 0.25}
    assert out["teacher/box"]["miou"] == 0.5  # mean of per-task means, not of the 3 target views (0.583)
    assert out["imitation/click"] == {"miou": 0.2, "tasks": {"a": 0.2}}


def test_photo_features_read_resize_and_scale_the_image(tmp_path):
    from types import SimpleNamespace

    from PIL import Image

    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # red
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "v.png")
    seen = []
    teacher = SimpleNamespace(encode=lambda x: (seen.append(x) or x,))
    feats = _load().photo_features(teacher, str(tmp_path / "v.png"), SimpleNamespace(width=3, height=2))
    assert len(feats) == 1 and tuple(seen[0].shape) == (1, 3, 2, 3)  # 1x3xHxW at the camera's size
    assert seen[0][0, 0].eq(1.0).all() and seen[0][0, 1:].eq(0.0).all()  # RGB in [0, 1], alpha dropped
