"""``san.utils.io``: a failed block never leaves a file that looks complete; ``san.utils.progress``:
progress lines with step, rate and ETA."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from san.utils import progress as progress_module
from san.utils.io import atomic_path, atomic_write_json, atomic_write_text, sha256_file
from san.utils.progress import Progress, format_seconds


def test_atomic_path_success_replaces_the_file(tmp_path):
    target = tmp_path / "sub" / "mesh.ply"  # the parent folder is created
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        assert tmp.suffix == ".ply"  # libraries pick the format from the suffix
        assert not target.exists()  # nothing at the final path while the block runs
        tmp.write_text("first")
    assert target.read_text() == "first"
    with atomic_path(target) as tmp:
        tmp.write_text("second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["mesh.ply"]  # no temporary left


def test_atomic_path_explicit_suffix(tmp_path):
    with atomic_path(tmp_path / "model", suffix=".npz") as tmp:
        assert tmp.name.endswith(".npz")
        np.savez(tmp, a=np.arange(3))
    assert np.load(tmp_path / "model")["a"].tolist() == [0, 1, 2]


def test_atomic_path_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half written")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_failure_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise KeyboardInterrupt  # an interrupted job, not only an exception
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_output_has_normal_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    atomic_write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~umask


def test_atomic_write_json_handles_numpy_and_paths(tmp_path):
    atomic_write_json(
        tmp_path / "m.json", {"a": np.float32(0.5), "b": np.arange(2), "c": Path("x/y"), "n": np.int64(3)}
    )
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 0.5, "b": [0, 1], "c": "x/y", "n": 3}
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        atomic_write_json(tmp_path / "bad.json", {"o": object()})
    assert not (tmp_path / "bad.json").exists()


def test_sha256_file(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f", chunk=2) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# --------------------------------------------------------------------------------------- progress


def test_format_seconds():
    assert format_seconds(5.4) == "5s"
    assert format_seconds(108) == "1m48s"
    assert format_seconds(3725) == "1h02m05s"
    assert format_seconds(-3) == "0s"


def test_progress_logs_step_metrics_rate_and_eta(caplog, monkeypatch):
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(perf_counter=lambda: clock.now))
    caplog.set_level(logging.INFO, logger="san")
    p = Progress(total=100, start=50, every=10, min_seconds=1e9, name="nerf")
    for step in range(50, 100):
        clock.now = (step + 1 - 50) * 0.2  # 5 steps per second
        p.update(step, loss=0.012345, psnr=23.4)
    lines = [r.getMessage() for r in caplog.records if r.name == "san"]
    assert len(lines) == 5  # steps 60, 70, 80, 90, 100 of 100
    assert lines[0] == "nerf step 60/100 | loss 0.01235 | psnr 23.4 | 5.0 it/s | ETA 8s"
    assert lines[-1].startswith("nerf step 100/100 |") and lines[-1].endswith("ETA 0s")


def test_progress_logs_after_min_seconds_and_on_the_last_step(caplog, monkeypatch):
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(perf_counter=lambda: clock.now))
    caplog.set_level(logging.INFO, logger="san")
    p = Progress(total=7, every=1000, min_seconds=10.0)
    p.update(0)  # 0 s since the last line: quiet
    clock.now = 11.0
    p.update(1)  # 11 s: logs
    clock.now = 12.0
    p.update(2)  # 1 s since the last line: quiet
    p.update(6)  # the last step always logs
    lines = [r.getMessage() for r in caplog.records if r.name == "san"]
    assert [line.split(" | ")[0] for line in lines] == ["train step 2/7", "train step 7/7"]
    assert all("ETA" in line and "it/s" in line for line in lines)
