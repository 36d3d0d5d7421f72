"""Human-readable, canonical text forms of nested settings (Snakemake ``params``, logs, reports)."""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))) + "}"
    return str(value)


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping) and value:
        for key in sorted(value, key=str):
            yield from _flatten(f"{prefix}.{key}" if prefix else str(key), value[key])
    else:
        yield prefix, _scalar(value)


def flat_settings(values: Mapping[str, Any]) -> str:
    """``values`` as sorted ``dotted.key=value`` pairs joined by ``"; "``, YAML-like scalars.

    The keys are the config's own (``nerf.steps=2000; nerf.lr=0.01``), so a reader finds them in
    ``config/README.md``; no quotes or braces need escaping in Snakemake's report. The text is
    canonical (sorted keys, ``repr`` floats), so it changes exactly when a value changes (Snakemake
    reruns a job whose ``params`` changed). Lists keep their order; an empty mapping prints ``{}``.

    Example: ``flat_settings({"nerf": {"steps": 2, "lr": 0.5, "hw": [4, 3]}})`` is
    ``"nerf.hw=[4, 3]; nerf.lr=0.5; nerf.steps=2"``.
    """
    return "; ".join(f"{key}={value}" for key, value in _flatten("", values))
