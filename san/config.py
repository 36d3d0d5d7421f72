"""Configuration plumbing: YAML -> JSON schema (Snakemake ``validate``) -> frozen dataclasses.

Each stage's config dataclass lives beside the class it configures (for example
:class:`san.models.nerf.NeRFConfig`). :func:`from_dict` builds any of them from the validated
mapping and rejects unknown keys by name, so a typo never silently falls back to a default.
Dataclasses are frozen: nothing mutates a config after parsing. Presets (``cpu``/``paper``) are
resolved once here by :func:`with_preset`: explicit keys win over the preset's values.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad configuration key or value; the message names the key path."""


def _convert(tp, value, where: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, where)
            except ConfigError as e:
                errors.append(str(e))
        if len(errors) == 1:  # ``X | None``: keep X's message (it names the bad key inside X)
            raise ConfigError(errors[0])
        raise ConfigError(f"{where}: {value!r} does not match {tp} ({'; '.join(errors)})")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str = "config") -> T:
    """Build the frozen dataclass ``cls`` from ``data``; unknown keys are an error naming the key."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = {f.name for f in fields}
    unknown = sorted(set(data) - names)
    if unknown:
        paths = ", ".join(f"{where}.{k}" for k in unknown)
        raise ConfigError(f"{where}: unknown key(s) {paths} (allowed: {', '.join(sorted(names))})")
    required = [f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [k for k in required if k not in data]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {', '.join(f'{where}.{k}' for k in missing)}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def with_preset(presets: Mapping[str, Mapping[str, Any]], section: Mapping[str, Any] | None, where: str) -> dict:
    """Merge ``section`` over the preset it names (key ``preset``); returns a new dict without ``preset``.

    Nested mappings (a section's sub-sections) merge recursively: an explicit key replaces only
    that key of the preset, not the preset's whole sub-section.
    """
    section = dict(section or {})
    name = section.pop("preset", None)
    if name is None:
        return section
    if name not in presets:
        raise ConfigError(f"{where}.preset: {name!r} is not one of {sorted(presets)}")
    return _merge(presets[name], section)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict:
    """``over`` on top of ``base`` (new dicts); nested mappings merge key by key."""
    merged = {k: _merge(v, {}) if isinstance(v, Mapping) else v for k, v in base.items()}
    for k, v in over.items():
        merged[k] = _merge(merged[k], v) if isinstance(v, Mapping) and isinstance(merged.get(k), Mapping) else v
    return merged


def to_dict(obj) -> dict:
    """A config dataclass as a plain dict (for metadata files)."""
    return dataclasses.asdict(obj)
