"""Every ``workflow/scripts/*.py`` adapter calls its ``san.pipeline`` stage function with arguments that
bind to the function's signature (names included), with ``snakemake.input``/``output`` passed by
name. The stage functions are replaced by recorders, so nothing is computed."""

from __future__ import annotations

import ast
import inspect
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
from snakemake.iocontainers import Namedlist, Wildcards

from san.pipeline.report import table_outputs

pytestmark = pytest.mark.usefixtures("restore_root_logging")  # run_rule reconfigures the root logger
REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "workflow" / "scripts").glob("*.py"))


class Files:
    """``snakemake.input`` / ``output`` stand-in: any name is a file path; ``items()`` gives ``named``."""

    def __init__(self, root: Path, named: dict | None = None):
        self._root, self._named = root, dict(named or {})

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._named.get(name, str(self._root / f"{name}.file"))

    def __getitem__(self, index):
        return str(self._root / f"{index}.file")

    def items(self):
        return self._named.items()


def _stage_imports(script: Path) -> list[tuple[str, str]]:
    tree = ast.parse(script.read_text())
    return [
        (node.module, a.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("san.pipeline.")
        for a in node.names
        if node.module != "san.pipeline.adapter"
    ]


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_adapter_arguments_bind_to_the_stage_signature(script, tmp_path, monkeypatch):
    import importlib

    calls = []
    for module_name, name in _stage_imports(script):
        module = importlib.import_module(module_name)
        real = getattr(module, name)

        def recorder(*args, _real=real, **kwargs):
            inspect.signature(_real).bind(*args, **kwargs)  # TypeError on a wrong or missing argument
            calls.append(_real.__name__)

        monkeypatch.setattr(module, name, recorder)
    monkeypatch.chdir(tmp_path)
    smk = SimpleNamespace(
        input=Files(tmp_path),
        output=Files(tmp_path, table_outputs(tmp_path) if script.stem == "make_tables" else None),
        params=SimpleNamespace(
            row={"format": "colmap", "kind": ""}, ground_truth=None, text_prompts=["a dog"], logs=[]
        ),
        wildcards=Wildcards(fromdict={"dataset": "demo", "scene": "demo", "variant": "full"}),
        log=Namedlist([str(tmp_path / "rule.log")]),
        rule=script.stem,
        attempt=1,
        resources=Namedlist(fromdict={"mem_mb": 1000}),
        threads=1,
        config={"scenes": "config/scenes.tsv"},
    )
    runpy.run_path(str(script), init_globals={"snakemake": smk})
    assert calls, f"{script.name} called no san.pipeline stage function"


def test_adapters_derive_no_folders():
    """Adapters pass the rule's declared inputs and outputs by name; none derives a folder from one."""
    offenders = [
        f"{s.name}:{i}" for s in SCRIPTS for i, line in enumerate(s.read_text().splitlines(), 1) if ".parent" in line
    ]
    assert not offenders, offenders


def test_evaluate_segmentation_adapter_passes_the_scene_text_prompts(tmp_path, monkeypatch):
    """The rule's ``params.text_prompts`` (common.smk's get_text_prompts: the sheet's list, else the
    config's) reaches the stage function as ``text_prompts``."""
    import san.pipeline.evaluate_segmentation as module

    calls = []
    monkeypatch.setattr(module, "evaluate_segmentation", lambda *a, **kw: calls.append(kw))
    monkeypatch.chdir(tmp_path)
    smk = SimpleNamespace(
        input=Files(tmp_path),
        output=Files(tmp_path),
        params=SimpleNamespace(text_prompts=["a red box", "the ground"]),
        wildcards=Wildcards(fromdict={"dataset": "demo", "scene": "demo", "variant": "full"}),
        log=Namedlist([str(tmp_path / "rule.log")]),
        rule="evaluate_segmentation",
        attempt=1,
        resources=Namedlist(fromdict={"mem_mb": 1000}),
        threads=1,
        config={"scenes": "config/scenes.tsv", "evaluation": {"text_prompts": ["a dog"]}},
    )
    runpy.run_path(str(REPO / "workflow" / "scripts" / "evaluate_segmentation.py"), init_globals={"snakemake": smk})
    assert [kw["text_prompts"] for kw in calls] == [["a red box", "the ground"]]
