"""scripts/eval_benchmark_prompt_ceiling.py: the prompts it makes from a ground-truth mask."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _load():
    path = ROOT / "scripts" / "eval_benchmark_prompt_ceiling.py"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ground_truth_click_and_box_by_hand():
    mask = np.zeros((20, 30), dtype=bool)
    mask[4:11, 6:21] = True  # rows 4..10, columns 6..20: 7 x 15 pixels
    module = _load()
    click, multi = module.gt_prompt("click", mask)
    # the deepest pixel of a 7-row band is on its middle row (7); ties along it: the first column
    # at the largest distance (4 from the left edge column 5 -> column 9), centre +0.5
    assert multi is True and click.box is None
    assert click.points.tolist() == [[9.5, 7.5]] and click.labels.tolist() == [1]
    box, multi = module.gt_prompt("box", mask)
    assert multi is False and box.points.shape == (0, 2)
    assert box.box.tolist() == [6.0, 4.0, 21.0, 11.0]  # corners: x0, y0, x1 = last column + 1, y1
