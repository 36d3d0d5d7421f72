"""``san.utils.checkpoint``: atomic, rotated checkpoints and resuming from the newest one."""

from __future__ import annotations

import pytest
import torch

from san.utils.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


def _steps(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_save_keeps_only_the_newest(tmp_path):
    for step in (100, 200, 300, 400):
        path = save_checkpoint(tmp_path / "ckpt", step, {"step": step, "w": torch.full((2,), float(step))}, keep=2)
        assert path.name == f"step_{step:07d}.ckpt" and path.is_file()
    assert _steps(tmp_path / "ckpt") == ["step_0000300.ckpt", "step_0000400.ckpt"]  # no temporaries either
    latest = latest_checkpoint(tmp_path / "ckpt")
    assert latest == tmp_path / "ckpt" / "step_0000400.ckpt"
    state = load_checkpoint(latest)
    assert state["step"] == 400 and torch.equal(state["w"], torch.tensor([400.0, 400.0]))


def test_keep_one(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"step": step}, keep=1)
    assert _steps(tmp_path) == ["step_0000003.ckpt"]


def test_rotation_is_by_step_number_not_name(tmp_path):
    # Past 9,999,999 steps the zero-padded names no longer sort numerically.
    for step in (9_999_998, 9_999_999, 10_000_000):
        save_checkpoint(tmp_path, step, {"step": step}, keep=2)
    assert _steps(tmp_path) == ["step_10000000.ckpt", "step_9999999.ckpt"]
    assert load_checkpoint(latest_checkpoint(tmp_path))["step"] == 10_000_000


def test_latest_checkpoint_picks_the_highest_step(tmp_path):
    assert latest_checkpoint(tmp_path / "absent") is None
    assert latest_checkpoint(tmp_path) is None
    for step in (7, 30, 12_000_000, 999):
        torch.save({"step": step}, tmp_path / f"step_{step:07d}.ckpt")
    (tmp_path / "step_latest.ckpt").write_text("not a step")  # ignored
    (tmp_path / "notes.txt").write_text("ignored")
    assert latest_checkpoint(tmp_path) == tmp_path / "step_12000000.ckpt"


def test_load_truncated_checkpoint_names_the_path(tmp_path):
    path = save_checkpoint(tmp_path, 5, {"w": torch.arange(1000.0)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match="step_0000005.ckpt: cannot read checkpoint") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    with pytest.raises(RuntimeError, match="missing.ckpt"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    """Issue 13, kind 7: a corrupt newest checkpoint must not fail every rerun."""
    import logging

    from san.utils.checkpoint import checkpoint_problem

    older = save_checkpoint(tmp_path, 100, {"w": torch.arange(10.0)})
    newest = save_checkpoint(tmp_path, 200, {"w": torch.arange(1000.0)})
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    assert checkpoint_problem(older) is None and checkpoint_problem(newest) is not None
    with caplog.at_level(logging.WARNING, logger="san"):
        assert latest_checkpoint(tmp_path) == older
    assert f"checkpoint {newest} is corrupt" in caplog.text and "falling back to the previous one" in caplog.text
    older.write_bytes(b"garbage")
    assert latest_checkpoint(tmp_path) is None  # nothing valid: start over rather than crash
