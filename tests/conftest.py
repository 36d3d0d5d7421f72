"""Shared fixtures.

Real scenes live in ``../shared/data`` beside the checkout (development machines and CI). In a
user's fresh clone they are absent: tests that need them skip with the reason, except under
``CI=true`` where missing data is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_CASES = REPO.parent / "shared" / "cases"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def _shared(sub: str, root: Path = SHARED_DATA) -> Path:
    path = root / sub
    if not path.exists():
        msg = f"real test data not found at {path} (it lives in ../shared/{root.name} beside the checkout)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + "; under CI=true missing data is a failure")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def fern_dir() -> Path:
    """``../shared/data/llff_fern/fern``: poses_bounds.npy, images_8, sparse/0/cameras.bin."""
    return _shared("llff_fern/fern")


@pytest.fixture(scope="session")
def lego_dir() -> Path:
    """``../shared/data/nerf_synthetic_lego/lego``: transforms_*.json with a subset of the PNGs."""
    return _shared("nerf_synthetic_lego/lego")


@pytest.fixture(scope="session")
def build_case(tmp_path_factory):
    """``build_case("B2-02") -> Path``: the failing input of ``../shared/cases/B2-02`` built by its own
    script from ``../shared/data`` (once per session; skipped without ``../shared``, failed under
    ``CI=true``)."""
    built: dict[str, Path] = {}

    def build(name: str) -> Path:
        if name not in built:
            script = _shared(f"{name}/build.py", SHARED_CASES)
            _shared("llff_fern/fern")
            out = tmp_path_factory.mktemp(name.lower().replace("-", "_")) / "case"
            env = {**os.environ, "PYTHONPATH": str(REPO), "SAN_SHARED": str(SHARED_DATA)}
            subprocess.run([sys.executable, str(script), str(out)], check=True, env=env, capture_output=True, text=True)
            built[name] = out
        return built[name]

    return build


@pytest.fixture
def workflow_dir(tmp_path) -> Path:
    """A scratch folder to run Snakemake in: links to the checkout's ``Snakefile``, ``workflow/``,
    ``config/`` and ``slurm/`` (so ``.snakemake/`` locks and metadata never land in the checkout,
    and a run here does not collide with one in the checkout)."""
    work = tmp_path / "work"
    work.mkdir()
    for name in ("Snakefile", "workflow", "config", "slurm"):
        (work / name).symlink_to(REPO / name)
    return work


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device("cpu")
