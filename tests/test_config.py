"""``san.config``: mapping -> frozen dataclasses, unknown keys and bad values named by key path,
presets merged under explicit keys."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pytest

from san.config import ConfigError, from_dict, to_dict, with_preset


@dataclass(frozen=True)
class Inner:
    steps: int = 10
    lr: float = 1e-3
    name: str = "a"
    flag: bool = False
    mode: Literal["fast", "slow"] = "fast"
    size: int | None = None
    pair: tuple[float, float] = (1.0, 2.0)
    many: tuple[int, ...] = ()

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {"steps": 5, "lr": 0.1}, "paper": {"steps": 500}}


@dataclass(frozen=True)
class Outer:
    scenes: str
    inner: Inner = field(default_factory=Inner)
    maybe: Inner | None = None
    label: str | None = None


def _err(data, cls=Outer) -> str:
    with pytest.raises(ConfigError) as info:
        from_dict(cls, data)
    return str(info.value)


def test_builds_nested_frozen_dataclasses():
    cfg = from_dict(
        Outer,
        {
            "scenes": "s.tsv",
            "inner": {
                "steps": 3,
                "lr": 1,
                "flag": True,
                "mode": "slow",
                "size": None,
                "pair": [3, 4.5],
                "many": [1, 2],
            },
            "maybe": {"name": "b"},
        },
    )
    assert isinstance(cfg.inner, Inner) and isinstance(cfg.maybe, Inner)
    assert cfg.inner.steps == 3 and cfg.inner.flag is True and cfg.inner.mode == "slow"
    assert cfg.inner.lr == 1.0 and type(cfg.inner.lr) is float  # YAML ints are accepted for floats
    assert cfg.inner.size is None
    assert cfg.inner.pair == (3.0, 4.5) and type(cfg.inner.pair) is tuple
    assert cfg.inner.many == (1, 2) and type(cfg.inner.many) is tuple
    assert cfg.maybe == Inner(name="b")
    assert cfg.label is None
    # Missing keys keep the defaults; an empty or None section gives the default dataclass.
    assert from_dict(Outer, {"scenes": "x"}) == Outer(scenes="x")
    assert from_dict(Inner, None) == Inner() and from_dict(Outer, {"scenes": "x", "inner": {}}).inner == Inner()


def test_round_trip_through_to_dict():
    cfg = from_dict(Outer, {"scenes": "x", "inner": {"pair": [0, 1], "many": [4]}, "maybe": {"size": 7}})
    plain = to_dict(cfg)
    assert plain["inner"]["pair"] == (0.0, 1.0) and plain["maybe"]["size"] == 7
    assert from_dict(Outer, plain) == cfg


@pytest.mark.parametrize(
    "data, path",
    [
        ({"scenes": "x", "bogus": 1}, "config.bogus"),
        ({"scenes": "x", "inner": {"stepz": 1}}, "config.inner.stepz"),
        ({"scenes": "x", "maybe": {"stepz": 1}}, "config.maybe.stepz"),  # inside an Optional section
    ],
)
def test_unknown_keys_are_named_by_path(data, path):
    msg = _err(data)
    assert path in msg
    assert "allowed" in msg


def test_all_unknown_keys_are_listed():
    msg = _err({"scenes": "x", "inner": {"stepz": 1, "lrr": 2, "steps": 3}})
    assert "config.inner.lrr" in msg and "config.inner.stepz" in msg


def test_missing_required_key_is_named():
    assert "config.scenes" in _err({"inner": {}})


@pytest.mark.parametrize(
    "inner, key",
    [
        ({"steps": "5"}, "steps"),  # string for int
        ({"steps": True}, "steps"),  # bool is not an int here
        ({"steps": 2.5}, "steps"),
        ({"steps": None}, "steps"),  # None only where Optional
        ({"lr": "1e-3"}, "lr"),
        ({"lr": False}, "lr"),
        ({"flag": "yes"}, "flag"),
        ({"flag": 1}, "flag"),
        ({"name": 3}, "name"),
        ({"mode": "medium"}, "mode"),  # not one of the Literal's values
        ({"size": "big"}, "size"),
        ({"size": True}, "size"),
        ({"pair": [1.0]}, "pair"),  # fixed-length tuple
        ({"pair": [1.0, 2.0, 3.0]}, "pair"),
        ({"pair": 1.0}, "pair"),
        ({"pair": [1.0, "b"]}, "pair[1]"),
        ({"many": ["a"]}, "many[0]"),
        ({"many": "abc"}, "many"),
    ],
)
def test_wrong_types_are_named_by_path(inner, key):
    msg = _err({"scenes": "x", "inner": inner})
    assert re.search(rf"config\.inner\.{re.escape(key)}(?!\w)", msg), msg


def test_section_must_be_a_mapping():
    assert "config.inner" in _err({"scenes": "x", "inner": [1, 2]})
    assert "config.maybe" in _err({"scenes": "x", "maybe": 3})
    assert "config.scenes" in _err({"scenes": None})


def test_literal_error_lists_the_choices():
    msg = _err({"scenes": "x", "inner": {"mode": "medium"}})
    assert "fast" in msg and "slow" in msg


def test_dataclasses_are_frozen():
    cfg = from_dict(Outer, {"scenes": "x"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.scenes = "y"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.inner.steps = 3  # type: ignore[misc]


# ---------------------------------------------------------------------------------------- presets


def test_with_preset_explicit_keys_win():
    section = {"preset": "cpu", "lr": 0.5, "name": "z"}
    merged = with_preset(Inner.PRESETS, section, "config.inner")
    assert merged == {"steps": 5, "lr": 0.5, "name": "z"}
    assert section == {"preset": "cpu", "lr": 0.5, "name": "z"}  # the caller's mapping is untouched
    assert Inner.PRESETS["cpu"] == {"steps": 5, "lr": 0.1}  # and so is the preset
    cfg = from_dict(Inner, merged)
    assert (cfg.steps, cfg.lr, cfg.name, cfg.mode) == (5, 0.5, "z", "fast")
    assert from_dict(Inner, with_preset(Inner.PRESETS, {"preset": "paper"}, "inner")).steps == 500


def test_with_preset_without_a_preset():
    assert with_preset(Inner.PRESETS, {"steps": 2}, "config.inner") == {"steps": 2}
    assert with_preset(Inner.PRESETS, None, "config.inner") == {}


def test_unknown_preset_is_named():
    with pytest.raises(ConfigError) as info:
        with_preset(Inner.PRESETS, {"preset": "gpu"}, "config.inner")
    msg = str(info.value)
    assert "config.inner.preset" in msg and "'gpu'" in msg and "cpu" in msg and "paper" in msg


def test_unknown_key_next_to_a_preset_is_still_rejected():
    merged = with_preset(Inner.PRESETS, {"preset": "cpu", "stepz": 1}, "config.inner")
    with pytest.raises(ConfigError, match=r"config\.inner\.stepz"):
        from_dict(Inner, merged, "config.inner")


def test_with_preset_merges_nested_sections_key_by_key():
    presets = {"cpu": {"a": 1, "sub": {"x": 1, "y": 2}}}
    merged = with_preset(presets, {"preset": "cpu", "sub": {"y": 3}}, "config.s")
    assert merged == {"a": 1, "sub": {"x": 1, "y": 3}}
    merged["sub"]["x"] = 99
    assert presets == {"cpu": {"a": 1, "sub": {"x": 1, "y": 2}}}  # the preset is not shared or mutated
