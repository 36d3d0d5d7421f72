"""Declared dependencies are used, extras install something, and the project carries its licence."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# distribution name -> module it provides, when they differ
IMPORT_NAME = {
    "segment-anything": "segment_anything",
    "scikit-image": "skimage",
    "fast-simplification": "fast_simplification",
    "pillow": "PIL",
    "pyyaml": "yaml",
    "lazy-loader": "lazy_loader",
}
# declared on purpose although no project file imports them; each with the reason
USED_INDIRECTLY = {
    "torchvision": "segment-anything imports it; pinned beside torch so the pair matches",
    "snakemake-executor-plugin-slurm": "found by snakemake as a plugin (`--profile slurm`), never imported",
    "jsonschema": "snakemake.utils.validate checks the config against workflow/schemas with it",
    "ninja": "torch.utils.cpp_extension runs it to build and load the C++ CPU hash grid (san.encodings.hashgrid)",
}
SOURCES = ["san", "workflow", "scripts", "benchmarks", ".ci", "Snakefile"]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[@]", requirement.strip(), maxsplit=1)[0].lower()


def _project_text() -> str:
    files = []
    for entry in SOURCES:
        path = ROOT / entry
        files += [path] if path.is_file() else [*path.rglob("*.py"), *path.rglob("*.smk")]
    return "\n".join(p.read_text() for p in files)


def test_every_core_dependency_is_imported_or_has_a_reason():
    text = _project_text()
    unused = []
    for requirement in PYPROJECT["project"]["dependencies"]:
        name = _name(requirement)
        if name in USED_INDIRECTLY:
            continue
        module = IMPORT_NAME.get(name, name.replace("-", "_"))
        if not re.search(rf"^\s*(import|from)\s+{re.escape(module)}\b", text, re.MULTILINE):
            unused.append(name)
    assert not unused, f"declared in pyproject.toml but imported nowhere: {unused}"


def test_tqdm_is_not_declared():
    names = [_name(r) for r in PYPROJECT["project"]["dependencies"]]
    assert "tqdm" not in names


def test_every_extra_installs_something():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert all(extras.values()), f"empty extras: {[k for k, v in extras.items() if not v]}"
    assert "tcnn" not in extras  # no wheel exists: README documents the build line instead
    readme = (ROOT / "README.md").read_text()
    assert "tiny-cuda-nn/#subdirectory=bindings/torch" in readme


def test_viewer_extra_lower_bound_is_a_viser_that_works():
    """viser 1.0.26 crashes on ``SceneApi.on_click``; 1.0.27 is the first that runs the viewer."""
    (viser,) = [r for r in PYPROJECT["project"]["optional-dependencies"]["viewer"] if _name(r) == "viser"]
    bound = re.search(r">=\s*([0-9.]+)", viser)
    assert bound, viser
    assert tuple(int(v) for v in bound.group(1).split(".")) >= (1, 0, 27)


def test_test_extra_has_snakefmt():
    assert "snakefmt" in [_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]]


def test_mit_licence_matches_pyproject():
    assert PYPROJECT["project"]["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c)" in text and "the san authors" in text
    assert "WITHOUT WARRANTY OF ANY KIND" in text


@pytest.mark.parametrize("module", ["lpips", "torchmetrics"])
def test_no_lpips_dependency(module):
    """LPIPS needs pretrained trunk weights downloaded at run time (README explains): not declared."""
    names = [_name(r) for group in PYPROJECT["project"]["optional-dependencies"].values() for r in group]
    assert module not in [_name(r) for r in PYPROJECT["project"]["dependencies"]] + names
