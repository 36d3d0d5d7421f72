"""Runs that fail honestly (issue 13): Snakemake runs of bad inputs fail early, in ``prepare_poses`` or
at DAG build, and print the one-line cause once, not stacked tracebacks; command-line config values
validate like YAML values (case B2-13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # Snakemake subprocesses: ~10 s each on 2 shared cores

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def snakemake(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([str(SNAKEMAKE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def snakemake_config(cwd: Path, *config: str, targets=(), dry_run: bool = False) -> subprocess.CompletedProcess:
    """``snakemake [-n] --cores 1 --config CONFIG... [-- TARGETS...]`` in ``cwd``."""
    return snakemake(
        *(["-n"] if dry_run else []),
        "--cores",
        "1",
        "--config",
        *config,
        *(["--", *targets] if targets else []),
        cwd=cwd,
    )


def sheet(path: Path, scene: str, folder: Path, extra: dict | None = None) -> Path:
    extra = extra or {}
    header = ["scene", "path", "format", *extra]
    path.write_text("\t".join(header) + "\n" + "\t".join([scene, str(folder), "auto", *extra.values()]) + "\n")
    return path


def test_b2_02_fails_in_prepare_poses_with_one_line_and_the_sheet_chooses_the_model(build_case, tmp_path, workflow_dir):
    case = build_case("B2-02")
    results = tmp_path / "res"
    target = results / "colmap" / "split" / "poses" / "cameras.json"
    run = snakemake_config(
        workflow_dir,
        f"scenes={sheet(tmp_path / 's.tsv', 'colmap/split', case)}",
        f"results={results}",
        targets=[str(target)],
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0 and not target.exists()
    assert out.count("COLMAP wrote 2 models: sparse/0 (5 images), sparse/1 (20 images)") == 1, out
    assert "rule prepare_poses: error: " in out and "Traceback" not in out
    log = (results / "logs" / "prepare_poses" / "colmap" / "split.log").read_text()
    assert "Traceback" in log  # the traceback is kept, in the rule's log
    chosen = sheet(tmp_path / "s2.tsv", "colmap/split", case, {"colmap_model": "sparse/1"})
    run = snakemake_config(workflow_dir, f"scenes={chosen}", f"results={results}", targets=[str(target)])
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(json.loads(target.read_text())["frames"]) == 20


def test_r2_20_bad_teacher_checkpoint_fails_before_the_nerf_trains(build_case, tmp_path, workflow_dir):
    teacher_dir = build_case("R2-20")
    scene = build_case("R2-base") / "scene"
    results = tmp_path / "res"
    model = results / "llff" / "small" / "nerf" / "model.pt"
    run = snakemake_config(
        workflow_dir,
        f"scenes={sheet(tmp_path / 's.tsv', 'llff/small', scene)}",
        f"results={results}",
        f"teacher={{name: sam_vit_h, checkpoint: {teacher_dir / 'sam_vit_b_fake.pth'}}}",
        targets=[str(model)],
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "rule prepare_poses: error: " in out
    assert f"{teacher_dir / 'sam_vit_b_fake.pth'}: wrong architecture: the checkpoint holds vit_b" in out
    assert "localrule train_nerf" not in out and not (results / "llff" / "small" / "nerf").exists()


def test_unknown_teacher_name_fails_at_dag_build(tmp_path, workflow_dir):
    run = snakemake_config(workflow_dir, f"results={tmp_path}", "teacher={name: sam_vit_q}", dry_run=True)
    assert run.returncode != 0 and "unknown teacher 'sam_vit_q'" in run.stdout + run.stderr


def test_prompts_naming_an_unknown_scene_fail_at_dag_build_naming_file_and_sheet(tmp_path, workflow_dir):
    prompts = tmp_path / "prompts.tsv"
    prompts.write_text("scene\tview\tx\ty\tlabel\nllff/fern\t0\t10\t10\t1\n")
    run = snakemake_config(
        workflow_dir, f"results={tmp_path}", f"segment={{prompts: {prompts}}}", targets=["segment_all"], dry_run=True
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert (
        f"{prompts}: scene(s) 'llff/fern' (line 2) not in the scene sheet config/scenes.tsv (it lists: demo/demo)"
        in out
    )
    assert "KeyError" not in out
    prompts.write_text("scene\tview\tx\ty\tlabel\ndemo/demo\tzero\t10\t10\t1\n")
    run = snakemake_config(
        workflow_dir, f"results={tmp_path}", f"segment={{prompts: {prompts}}}", targets=["segment_all"], dry_run=True
    )
    assert run.returncode != 0 and "line 2: view 'zero' is not an integer" in run.stdout + run.stderr


def test_b2_13_command_line_values_validate_like_yaml(tmp_path, workflow_dir):
    overrides = [
        "resources={train_nerf: {mem_mb: 64000}}",
        "nerf={preset: cpu, steps: 500}",
        "poses={background: [0, 0.5, 1]}",
        "imitation={lr_head: 1e-3}",
    ]
    run = snakemake_config(workflow_dir, f"results={tmp_path}", *overrides, dry_run=True)
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]
    run = snakemake_config(workflow_dir, f"results={tmp_path}", "nerf={steps: many}", dry_run=True)
    assert run.returncode != 0 and "'many' is not of type 'integer'" in run.stdout + run.stderr


def test_command_line_strings_coerced_only_where_the_field_is_not_a_string():
    from san.pipeline.settings import coerce_command_line_values, parse_settings

    config = {"scenes": "s.tsv", "results": "2024", "nerf": {"preset": "cpu", "steps": 5}}
    overrides = {"results": "2024", "nerf": {"steps": "500", "lr": "1e5"}, "teacher": {"checkpoint": "null"}}
    for k, v in overrides.items():
        config[k] = {**config.get(k, {}), **v} if isinstance(v, dict) else v
    coerce_command_line_values(config, overrides)
    assert config["nerf"] == {"preset": "cpu", "steps": 500, "lr": 100000.0} and config["results"] == "2024"
    assert config["teacher"]["checkpoint"] is None
    settings = parse_settings(config)
    assert settings.nerf.steps == 500 and settings.results == "2024"
    # A quoted value in a YAML file (not a command-line override) stays a string: still a type error.
    from san.config import ConfigError

    with pytest.raises(ConfigError, match=r"config.nerf.steps: expected an integer, got '500'"):
        parse_settings({"scenes": "s.tsv", "nerf": {"steps": "500"}})
    bad = {"scenes": "s.tsv", "nerf": {"steps": "many"}}
    coerce_command_line_values(bad, {"nerf": {"steps": "many"}})
    assert bad["nerf"]["steps"] == "many"  # left for validation to report


def test_scene_text_prompts_fail_at_dag_build_for_a_teacher_without_text_head(tmp_path, workflow_dir):
    """A scene sheet's text_prompts with the demo's teacher (no text head) and a malformed list both
    fail at DAG build naming the sheet and the scene; a SAM 3 teacher takes the list (the dry run
    does not need the optional sam3 package)."""
    scenes = tmp_path / "s.tsv"
    scenes.write_text("scene\tpath\tformat\ttext_prompts\ndemo/demo\tgenerated\tdemo\ta red box;the ground\n")
    run = snakemake_config(workflow_dir, f"results={tmp_path}", f"scenes={scenes}", dry_run=True)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-2000:]
    assert f"{scenes}: column text_prompts gives text prompts (scene 'demo/demo': ['a red box', 'the ground'])" in out
    assert "has no text head" in out
    run = snakemake_config(
        workflow_dir,
        f"results={tmp_path}",
        f"scenes={scenes}",
        "teacher={name: sam3_untrained_small}",
        "evaluation={timing_teacher: null}",
        dry_run=True,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]
    scenes.write_text("scene\tpath\tformat\ttext_prompts\ndemo/demo\tgenerated\tdemo\ta red box;\n")
    run = snakemake_config(workflow_dir, f"results={tmp_path}", f"scenes={scenes}", dry_run=True)
    out = run.stdout + run.stderr
    assert run.returncode != 0 and f"{scenes}: scene 'demo/demo': text_prompts 'a red box;': empty prompt" in out
