"""The one command line (san.cli): every user command is a `san <verb>`, with one --set parser."""

from __future__ import annotations

import pytest

from san.cli import COMMANDS, DEVICE_HELP, CommandError, build_parser, main, parse_overrides


def test_every_user_command_is_a_san_verb():
    assert {c.name for c in COMMANDS} == {
        "inspect",
        "segment",
        "view",
        "extract-mesh",
        "train-imitation",
        "build-kernel",
        "schema",
    }


def test_parse_overrides_reads_json_values_and_names_bad_items():
    assert parse_overrides(["steps=200", "augment=false", 'name="x"', "fov=[40, 60]"]) == {
        "steps": 200,
        "augment": False,
        "name": "x",
        "fov": [40, 60],
    }
    with pytest.raises(CommandError, match="--set 'steps': expected KEY=JSON"):
        parse_overrides(["steps"])
    with pytest.raises(CommandError, match="--set 'name=x': the value is not JSON"):
        parse_overrides(["name=x"])


def test_bad_preset_and_set_are_usage_errors(capsys):
    assert main(["extract-mesh", "--model", "m", "--cameras", "c", "--out", "o", "--preset", "nope"]) == 1
    assert "mesh.preset: 'nope' is not one of" in capsys.readouterr().err
    assert (
        main(["train-imitation", "--model", "m", "--cameras", "c", "--cache", "h", "--out", "o", "--set", "steps"]) == 1
    )
    assert "expected KEY=JSON" in capsys.readouterr().err


def _help(command: str) -> str:
    parser = build_parser()
    return next(a for a in parser._subparsers._group_actions if a.dest == "command").choices[command].format_help()


def test_segment_help_shows_an_example_and_documents_device(capsys):
    with pytest.raises(SystemExit) as info:
        main(["segment", "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    examples = out[out.index("examples:") :]
    assert "san segment --scene-dir results/demo/demo --view 0 --click" in examples
    assert "auto | cpu | cuda[:N]" in " ".join(out.split())  # --device, whatever the line wrapping


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_command_has_examples_and_documents_its_device_option(command):
    text = _help(command)
    assert f"examples:\n  san {command}" in text or "examples:\n  # " in text
    assert f"\n  san {command} " in text[text.index("examples:") :]
    if "--device" in text:
        assert " ".join(DEVICE_HELP.split()) in " ".join(text.split())


def test_every_command_sets_up_logging_once_in_main(capsys):
    """``main`` logs to stderr at INFO before any command runs (issue 17: `san segment` was silent)."""
    import logging

    assert main(["schema"]) == 0
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_san_handler", False)]
    assert len(ours) == 1 and root.level == logging.INFO
    logging.getLogger("san.cli").info("a step line")
    assert "san.cli INFO a step line" in capsys.readouterr().err
    assert main(["schema", "-v"]) == 0  # after the command too; still one handler
    assert logging.getLogger().level == logging.DEBUG
    assert len([h for h in root.handlers if getattr(h, "_san_handler", False)]) == 1


def test_segment_text_option(tmp_path, capsys):
    """``--text`` writes a one-row prompts TSV with a text column (then fails here: no trained scene);
    it needs --view and excludes --click and --prompts."""
    from san.interaction.prompts import read_prompts

    out = tmp_path / "out"
    args = ["segment", "--scene-dir", str(tmp_path / "demo" / "demo"), "--view", "2", "--out", str(out)]
    assert main([*args, "--text", "a red box"]) == 1  # the scene folder has no stage files
    capsys.readouterr()
    df = read_prompts(out / "prompts.tsv")
    assert list(df["text"]) == ["a red box"] and list(df["view"]) == [2] and list(df["scene"]) == ["demo/demo"]
    assert main([*args, "--text", "a red box", "--click", "3,4"]) == 1
    assert "no --click" in capsys.readouterr().err
    assert main(["segment", "--scene-dir", "x/y", "--text", "a dog", "--prompts", "p.tsv", "--out", str(out)]) == 1
    assert "not both" in capsys.readouterr().err
