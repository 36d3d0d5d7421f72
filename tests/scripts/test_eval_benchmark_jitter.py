"""scripts/eval_benchmark_jitter.py: the jittered layout moves every prompt point and shares the rest."""

from __future__ import annotations

import json

from tests.conftest import load_script


def _load():
    return load_script("scripts/eval_benchmark_jitter.py")


def test_jittered_layout_moves_points_and_links_the_rest(tmp_path):
    layout = tmp_path / "gt"
    (layout / "masks").mkdir(parents=True)
    (layout / "masks" / "a.png").write_bytes(b"x")
    tasks = [
        {"task": "a", "points": [[10.5, 20.5], [3.0, 4.0]], "labels": [1, 0]},
        {"task": "b", "points": [[1.0, 1.0]]},
    ]
    (layout / "prompts.json").write_text(json.dumps({"format_version": 1, "tasks": tasks}))
    out = _load().jittered_layout(layout, tmp_path / "j", 1.0, -1.0)
    moved = json.loads((out / "prompts.json").read_text())["tasks"]
    assert moved[0]["points"] == [[11.5, 19.5], [4.0, 3.0]] and moved[1]["points"] == [[2.0, 0.0]]
    assert moved[0]["labels"] == [1, 0]
    assert (out / "masks").is_symlink() and (out / "masks" / "a.png").read_bytes() == b"x"
    assert json.loads((layout / "prompts.json").read_text())["tasks"] == tasks  # the original is untouched
