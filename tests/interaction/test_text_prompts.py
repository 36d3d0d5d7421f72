"""Text prompts in the session and in the prompts TSV (decoders with a text head: SAM 3)."""

from __future__ import annotations

import pytest
import torch
import trimesh

from san.interaction.prompts import PromptError, read_prompts
from san.interaction.session import Camera, SegmentationSession, SessionError


def test_session_text_is_the_same_prompt_in_every_view(make_square, make_camera, mesh_renderer, features_fn):
    seen = []

    def decode(features, prompts, hw):
        seen.append(prompts.text)
        mask = torch.zeros(1, *hw, dtype=torch.bool)
        mask[:, : hw[0] // 2] = True
        return mask, torch.ones(1)

    mesh = trimesh.util.concatenate([make_square(6.0, 0.0)])
    views = [Camera(*make_camera((0.0, 0.0, 4.0))), Camera(*make_camera((2.4, 0.0, 4.5)))]
    session = SegmentationSession(mesh_renderer(mesh), features_fn, decode, views)
    session.set_view(0)
    session.add_click(10.5, 10.5)
    session.set_text("  a red box ")
    assert session.text == "a red box" and not session.clicks  # the text replaces the clicks
    results = session.predict_views([0, 1])
    assert seen == ["a red box", "a red box"] and all(r.mask.any() for r in results)
    session.set_view(1)
    session.add_click(20.5, 20.5)
    assert session.text is None  # a click replaces the text
    with pytest.raises(SessionError, match="non-empty"):
        session.set_text(" ")


def test_prompts_tsv_text_column(tmp_path):
    path = tmp_path / "prompts.tsv"
    path.write_text(
        "scene\tview\tx\ty\tlabel\tobject\ttext\n"
        "demo/demo\t3\t40.5\t60.5\t1\ta\t\n"
        "demo/demo\t3\t\t\t\tb\ta yellow bulldozer\n"
    )
    df = read_prompts(path)
    assert list(df["text"]) == ["", "a yellow bulldozer"]
    assert df["label"].tolist() == [1, -1]
    bad = tmp_path / "bad.tsv"
    bad.write_text("scene\tview\tx\ty\tlabel\ttext\ndemo/demo\t3\t4.5\t\t\ta dog\n")
    with pytest.raises(PromptError, match="line 2: a text prompt leaves x, y and label empty"):
        read_prompts(bad)
    mixed = tmp_path / "mixed.tsv"
    mixed.write_text("scene\tview\tx\ty\tlabel\ttext\ndemo/demo\t3\t4.5\t4.5\t1\t\ndemo/demo\t3\t\t\t\ta dog\n")
    with pytest.raises(PromptError, match="a text prompt is an object of its own"):
        read_prompts(mixed)
