"""The import-layer rule of docs/architecture.md: a module of ``san`` imports only modules of its own
layer or of lower ones. Every import counts, including function-local and ``TYPE_CHECKING`` ones.

:func:`upward_imports` parses a package's files with :mod:`ast`; it is tested on a synthetic tree with
a planted upward import, then run on ``san`` itself.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Mapping

REPO = Path(__file__).resolve().parents[1]

# Lowest first; a unit is a top-level module or sub-package of `san` (docs/architecture.md, "Layers").
LAYERS: dict[str, int] = {
    **dict.fromkeys(("cameras", "config", "layout", "metrics", "utils"), 0),
    **dict.fromkeys(("data", "encodings", "teachers"), 1),
    **dict.fromkeys(("fields", "rendering"), 2),
    **dict.fromkeys(("models", "mesh", "features"), 3),
    **dict.fromkeys(("imitation", "evaluation"), 4),
    "report": 5,
    "trained_scene": 6,
    "interaction": 7,
    "benchmark": 7,
    **dict.fromkeys(("pipeline", "errors"), 8),
    "cli": 9,
}


def _imported(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """``(line, unit)`` of every absolute import of ``package.<unit>...`` in a module."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names] if node.module == package else [])
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == package and len(parts) > 1:
                out.append((node.lineno, parts[1]))
    return out


def upward_imports(package_dir: Path, layers: Mapping[str, int]) -> list[str]:
    """Every import in ``package_dir`` (a package folder) of a unit on a higher layer than the
    importing file's unit, as ``"file:line: unit (layer a) imports unit (layer b)"``; a unit missing
    from ``layers`` is reported too (new modules must be placed)."""
    package = package_dir.name
    problems = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir)
        if rel.parts == ("__init__.py",):
            continue
        unit = rel.parts[0].removesuffix(".py")
        if unit not in layers:
            problems.append(f"{package}/{rel}: unit {unit!r} is on no layer")
            continue
        for line, target in _imported(ast.parse(path.read_text(), str(path)), package):
            if target == unit:
                continue
            if target not in layers:
                problems.append(f"{package}/{rel}:{line}: imports {package}.{target}, which is on no layer")
            elif layers[target] > layers[unit]:
                problems.append(
                    f"{package}/{rel}:{line}: {unit} (layer {layers[unit]}) imports {target} (layer {layers[target]})"
                )
    return problems


def _tree(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_checker_finds_a_planted_upward_import(tmp_path):
    layers = {"low": 0, "mid": 1, "top": 2}
    pkg = _tree(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "low.py": "import os\n",
            "mid/__init__.py": "from pkg.low import x\n",
            "mid/core.py": "from pkg.mid import y\nfrom pkg import low\n",
            "top.py": "import pkg.mid.core\n",
        },
    )
    assert upward_imports(pkg, layers) == []
    # Planted: a lower layer reaches up, once at module level and once inside a function.
    (pkg / "low.py").write_text("import os\n\ndef f():\n    from pkg.top import main\n")
    (pkg / "mid" / "core.py").write_text("from pkg import top\n")
    assert upward_imports(pkg, layers) == [
        "pkg/low.py:4: low (layer 0) imports top (layer 2)",
        "pkg/mid/core.py:1: mid (layer 1) imports top (layer 2)",
    ]


def test_checker_reports_units_on_no_layer(tmp_path):
    pkg = _tree(tmp_path / "pkg", {"__init__.py": "", "low.py": "import pkg.new\n", "new.py": ""})
    assert upward_imports(pkg, {"low": 0}) == [
        "pkg/low.py:1: imports pkg.new, which is on no layer",
        "pkg/new.py: unit 'new' is on no layer",
    ]


def test_san_has_no_upward_import():
    assert upward_imports(REPO / "san", LAYERS) == []


def test_architecture_doc_names_every_unit():
    doc = (REPO / "docs" / "architecture.md").read_text()
    missing = [u for u in LAYERS if f"san/{u}" not in doc]
    assert not missing, f"docs/architecture.md does not place {missing} on a layer"
