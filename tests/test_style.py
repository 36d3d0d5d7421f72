"""Style guards run by `make test`: ruff (lint and format, config in pyproject.toml) on the Python
code, snakefmt on the workflow files.

The tools come with the ``test`` extra. Where one is missing the test skips with the reason, except
under ``CI=true``, where a missing tool is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON_PATHS = ["san", "tests", "scripts", "workflow/scripts", "benchmarks"]
WORKFLOW_FILES = ["Snakefile", "workflow/rules"]


def _tool(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        msg = f"{name} is not installed (pip install -e '.[test]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + "; under CI=true a missing tool is a failure")
        pytest.skip(msg)
    return found


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True)


def _existing(paths: list[str]) -> list[str]:
    return [p for p in paths if (REPO / p).exists()]


def test_ruff_lint():
    out = _run(_tool("ruff"), "check", "--no-cache", *_existing(PYTHON_PATHS))
    assert out.returncode == 0, f"ruff check (fix with: ruff check --fix):\n{out.stdout}{out.stderr}"


def test_ruff_format():
    out = _run(_tool("ruff"), "format", "--check", "--no-cache", *_existing(PYTHON_PATHS))
    assert out.returncode == 0, f"ruff format --check (fix with: ruff format):\n{out.stdout}{out.stderr}"


def test_snakefmt():
    out = _run(_tool("snakefmt"), "--check", *_existing(WORKFLOW_FILES))
    assert out.returncode == 0, (
        f"snakefmt --check (fix with: snakefmt Snakefile workflow/rules):\n{out.stdout}{out.stderr}"
    )
