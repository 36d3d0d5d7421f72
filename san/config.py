"""Configuration plumbing: YAML -> JSON schema (Snakemake ``validate``) -> frozen dataclasses.

Each stage's config dataclass lives in the light ``config`` module of the package it configures
(for example :class:`san.models.config.NeRFConfig`), which imports no torch, trimesh or h5py, so
that parsing the configuration (every Snakemake parse does) stays fast. :func:`from_dict` builds any of them from the validated
mapping and rejects unknown keys by name, so a typo never silently falls back to a default.
Dataclasses are frozen: nothing mutates a config after parsing. Presets (``cpu``/``paper``) are
resolved once here by :func:`with_preset`: explicit keys win over the preset's values.

Command-line values: Snakemake passes nested ``--config "nerf={steps: 500}"`` values as strings
(``'500'``). :func:`coerce_strings` reads such a string as the YAML value it would be in a config
file, wherever the dataclass field is not a string, so command-line values validate exactly like
the same values in YAML.
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


def _coerce_value(tp, value):
    """``value`` with strings read as YAML where ``tp`` expects a non-string (see the module docstring)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if isinstance(value, str) and value.strip() in ("null", "~", "None") and type(None) in args:
            return None
        if len(options) == 1:
            return _coerce_value(options[0], value)
        if str in options:
            return value
        for a in options:
            converted = _coerce_value(a, value)
            if converted is not value:
                return converted
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, Mapping):
            return coerce_strings(tp, value)
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = _yaml(value)
        if isinstance(value, (list, tuple)):
            if len(args) == 2 and args[1] is Ellipsis:
                return [_coerce_value(args[0], v) for v in value]
            if len(args) == len(value):
                return [_coerce_value(a, v) for a, v in zip(args, value)]
        return value
    if not isinstance(value, str) or tp is str or tp is Any:
        return value
    if tp in (int, float, bool) or origin is typing.Literal:
        loaded = _yaml(value)
        if tp is float and isinstance(loaded, str):  # YAML 1.1 reads '1e5' as a string
            try:
                return float(loaded)
            except ValueError:
                return value
        if origin is typing.Literal and loaded not in args:
            return value
        return loaded
    return value


def _yaml(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def coerce_strings(cls, data: Mapping[str, Any]) -> dict:
    """A copy of ``data`` where strings under fields of ``cls`` that are not strings are read as YAML
    (``'64000'`` -> ``64000``, ``'1e5'`` -> ``100000.0``, ``'true'`` -> ``True``); unknown keys and
    strings that do not parse are kept for validation to report."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return {k: _coerce_value(hints[k], v) if k in names else v for k, v in data.items()}


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
