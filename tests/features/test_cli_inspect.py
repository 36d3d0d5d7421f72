"""``san inspect`` on good and bad feature caches."""

from __future__ import annotations

import subprocess
import sys

from san.cli import main


def test_inspect_good_file(cache_file, capsys):
    assert main(["inspect", str(cache_file)]) == 0
    out = capsys.readouterr().out
    assert "fake_untrained" in out and "UNTRAINED" in out
    assert "4 (2 train, 2 augmented)" in out
    assert "features/1" in out and "4x4x4x4 float16" in out
    assert "validation" in out and "OK" in out


def test_inspect_truncated_file(cache_file, capsys):
    data = cache_file.read_bytes()
    cache_file.write_bytes(data[: len(data) // 2])
    assert main(["inspect", str(cache_file), "--full"]) == 1
    err = capsys.readouterr().err
    assert str(cache_file) in err and "truncated" in err and "INVALID" in err


def test_inspect_unknown_suffix_and_missing(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "a.xyz")]) == 1
    assert "don't know how to inspect" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "a.h5")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_console_entry_point(cache_file):
    run = subprocess.run([sys.executable, "-m", "san.cli", "inspect", str(cache_file)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "fake_untrained" in run.stdout
