"""The one command line (san.cli): every user command is a `san <verb>`, with one --set parser."""

from __future__ import annotations

import pytest

from san.cli import COMMANDS, CommandError, main, parse_overrides


def test_every_user_command_is_a_san_verb():
    assert {c.name for c in COMMANDS} == {"inspect", "segment", "view", "extract-mesh", "train-imitation", "schema"}


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
