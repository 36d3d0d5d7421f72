"""The DAG-build path stays light: what ``workflow/rules/common.smk`` imports and calls at every
Snakemake parse (settings parsing, scene sheet, prompts sheet, teacher preflight) loads neither
torch nor trimesh nor h5py; and the top-level ``seed`` reaches exactly the stage that reads it."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMON = REPO / "workflow" / "rules" / "common.smk"
HEAVY = ("torch", "trimesh", "h5py")


def _common_smk_imports() -> list[str]:
    """The ``from san... import ...`` statements at the top of common.smk, as written there."""
    lines = []
    for line in COMMON.read_text().splitlines():
        if line.startswith(("from san", "import san")):
            lines.append(line)
        elif line.startswith(("def ", "wildcard_constraints")):
            break
    return lines


def test_common_smk_imports_are_found():
    imports = _common_smk_imports()
    assert any("san.pipeline.settings" in line for line in imports), imports
    assert any("san.teachers.preflight" in line for line in imports), imports


def test_dag_build_path_imports_no_torch_trimesh_h5py(tmp_path):
    """A fresh interpreter runs common.smk's imports and its parse-time calls on the demo config."""
    code = "\n".join(
        [
            *_common_smk_imports(),
            "import sys, json, yaml",
            f"config = yaml.safe_load(open({str(REPO / 'config' / 'config.yaml')!r}))",
            f"config['scenes'] = {str(REPO / 'config' / 'scenes.tsv')!r}",
            "coerce_command_line_values(config, {})",
            "settings = parse_settings(config)",
            "scenes = read_scene_sheet(config['scenes'])",
            "check_teacher(settings.teacher, open_checkpoint=False)",
            "check_text_prompts(settings.teacher, (), dict(scenes['text_prompts']), config['scenes'])",
            f"ids = prompt_scene_ids({str(REPO / 'config' / 'demo_prompts.tsv')!r}, scenes, config['scenes'])",
            "assert ids == ['demo/demo'], ids",
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))",
        ]
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_check_fails_when_a_heavy_module_is_imported(tmp_path):
    """The probe above can fail: importing a module that loads torch is reported."""
    code = (
        "import sys, json\nimport san.models.nerf\n" + f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True
    )
    assert "torch" in json.loads(out.stdout.decode().strip().splitlines()[-1])


def test_top_level_seed_reaches_only_the_stage_that_reads_it():
    """One seed policy: ``seed`` is in the rerun params (``settings_of``) of exactly the rules whose
    script reads ``settings.seed``; every other stage has its own seed key (``nerf.seed``, ...)."""
    readers = set()
    for script in sorted((REPO / "workflow" / "scripts").glob("*.py")):
        tree = ast.parse(script.read_text())
        if any(
            isinstance(n, ast.Attribute) and n.attr == "seed" and getattr(n.value, "id", "") == "settings"
            for n in ast.walk(tree)
        ):
            readers.add(script.stem)
    rerun = set()
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for rule, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)+)", smk.read_text(), re.M):
            m = re.search(r"settings_of\(([^)]*)\)", body)
            script = re.search(r'script:\s*\n\s*"\.\./scripts/(\w+)\.py"', body)
            if m and '"seed"' in m.group(1):
                rerun.add(script.group(1) if script else rule)
    assert readers == rerun == {"train_imitation"}
