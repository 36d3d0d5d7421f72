"""The pipeline's configuration: one frozen :class:`Settings` built from the validated YAML.

Flow: ``config/*.yaml`` -> JSON schema (``workflow/schemas/config.schema.yaml``, checked by
Snakemake's ``validate`` in ``common.smk``) -> :func:`parse_settings` -> frozen dataclasses that
every script rebuilds from the same mapping. Each stage's dataclass lives beside the code it
configures; this module only composes them. The JSON schema is *generated* from these
dataclasses (``python -m san.pipeline.settings > workflow/schemas/config.schema.yaml``) and a test
checks that the committed schema is current, so schema and code cannot drift apart.

The scene sheet (TSV) is read and checked by :func:`read_scene_sheet`.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from san.config import ConfigError, from_dict, with_preset
from san.data.demo import DemoSceneConfig
from san.data.prepare import PreparePosesConfig
from san.evaluation.protocol import EvaluationConfig
from san.imitation.config import TrainImitationConfig
from san.mesh.extract import MeshConfig
from san.pipeline.cache_features import CacheFeaturesConfig
from san.pipeline.train_nerf import TrainNeRFConfig
from san.report import ReportConfig
from san.teachers import TeacherConfig

VARIANTS = ("full", "no_aug", "no_cache", "mesh", "no_corr")
STAGES = (
    "make_demo_scene",
    "prepare_poses",
    "train_nerf",
    "extract_mesh",
    "cache_features",
    "train_imitation",
    "evaluate_segmentation",
    "time_teacher",
    "report",
    "segment",
)
_GPU_STAGES = {"train_nerf", "cache_features", "train_imitation", "evaluate_segmentation", "time_teacher", "segment"}


@dataclass(frozen=True)
class ResourceSpec:
    """Cluster resources of one rule. ``mem_mb`` is multiplied by the attempt number on retries."""

    runtime: int = 30  # minutes
    mem_mb: int = 4000
    cpus: int = 2
    gpu: int = 0


@dataclass(frozen=True)
class ResourcesConfig:
    """Per-stage resources; any stage not given uses :data:`DEFAULT_RESOURCES`."""

    make_demo_scene: ResourceSpec | None = None
    prepare_poses: ResourceSpec | None = None
    train_nerf: ResourceSpec | None = None
    extract_mesh: ResourceSpec | None = None
    cache_features: ResourceSpec | None = None
    train_imitation: ResourceSpec | None = None
    evaluate_segmentation: ResourceSpec | None = None
    time_teacher: ResourceSpec | None = None
    report: ResourceSpec | None = None
    segment: ResourceSpec | None = None

    def for_stage(self, stage: str) -> ResourceSpec:
        if stage not in STAGES:
            raise ConfigError(f"resources: unknown stage {stage!r}")
        return getattr(self, stage) or DEFAULT_RESOURCES[stage]


DEFAULT_RESOURCES: dict[str, ResourceSpec] = {
    "make_demo_scene": ResourceSpec(runtime=10, mem_mb=2000, cpus=1),
    "prepare_poses": ResourceSpec(runtime=10, mem_mb=4000, cpus=1),
    "train_nerf": ResourceSpec(runtime=120, mem_mb=16000, cpus=4, gpu=1),
    "extract_mesh": ResourceSpec(runtime=60, mem_mb=16000, cpus=4, gpu=0),
    "cache_features": ResourceSpec(runtime=60, mem_mb=16000, cpus=4, gpu=1),
    "train_imitation": ResourceSpec(runtime=240, mem_mb=16000, cpus=4, gpu=1),
    "evaluate_segmentation": ResourceSpec(runtime=60, mem_mb=16000, cpus=4, gpu=1),
    "time_teacher": ResourceSpec(runtime=30, mem_mb=16000, cpus=4, gpu=1),
    "report": ResourceSpec(runtime=10, mem_mb=2000, cpus=1),
    "segment": ResourceSpec(runtime=30, mem_mb=8000, cpus=2, gpu=1),
}
assert set(DEFAULT_RESOURCES) == set(STAGES) and all(
    (s in _GPU_STAGES) == bool(DEFAULT_RESOURCES[s].gpu) for s in STAGES if s != "extract_mesh"
)


@dataclass(frozen=True)
class SegmentConfig:
    """Batch segmentation (rule ``segment_prompts``): prompts TSV with ``scene, view, x, y, label``."""

    prompts: str | None = None
    export_mesh: bool = True
    views_for_mesh: int = 3


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline reads from its YAML config."""

    scenes: str
    data_root: str | None = None
    results: str = "results"
    device: str = "auto"
    seed: int = 0
    variants: tuple[str, ...] = ("full", "no_aug")
    poses: PreparePosesConfig = field(default_factory=PreparePosesConfig)
    demo_scene: DemoSceneConfig = field(default_factory=DemoSceneConfig)
    nerf: TrainNeRFConfig = field(default_factory=TrainNeRFConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    features: CacheFeaturesConfig = field(default_factory=CacheFeaturesConfig)
    imitation: TrainImitationConfig = field(default_factory=TrainImitationConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)


# Sections whose dataclass offers named presets (``preset: cpu | paper``).
_PRESET_SECTIONS = {
    "nerf": TrainNeRFConfig,
    "mesh": MeshConfig,
    "imitation": TrainImitationConfig,
    "evaluation": EvaluationConfig,
}


def parse_settings(config: Mapping[str, Any]) -> Settings:
    """Validated YAML mapping -> frozen :class:`Settings` (presets resolved, unknown keys rejected)."""
    data = dict(config)
    for name, cls in _PRESET_SECTIONS.items():
        if name in data:
            data[name] = with_preset(cls.PRESETS, data[name], f"config.{name}")
    if isinstance(data.get("resources"), Mapping):
        # A partial override (e.g. only mem_mb) keeps the stage's other defaults (its GPU, runtime).
        data["resources"] = {
            stage: {**dataclasses.asdict(DEFAULT_RESOURCES[stage]), **spec}
            if stage in DEFAULT_RESOURCES and isinstance(spec, Mapping)
            else spec
            for stage, spec in data["resources"].items()
        }
    settings = from_dict(Settings, data)
    bad = [v for v in settings.variants if v not in VARIANTS]
    if bad:
        raise ConfigError(f"config.variants: unknown variant(s) {bad} (allowed: {list(VARIANTS)})")
    if settings.device != "auto" and not (settings.device == "cpu" or settings.device.startswith("cuda")):
        raise ConfigError(f"config.device: {settings.device!r} is not auto, cpu or cuda[:N]")
    return settings


# ----------------------------------------------------------------------------------- scene sheet

SHEET_COLUMNS = ("scene", "path", "format")
SHEET_FORMATS = ("auto", "colmap", "llff", "blender", "nerfstudio", "demo")


def read_scene_sheet(path: str | Path, data_root: str | None = None):
    """Read and check the scene sheet (TSV: ``scene``, ``path``, ``format``, optional ``kind``).

    ``scene`` is ``dataset/name``; relative ``path`` values are resolved under ``data_root`` when
    it is set. Every problem is collected and raised at once (empty sheet, duplicate ids, unknown
    formats or kinds, and *all* missing scene folders in one message) before any job starts.
    Returns a DataFrame indexed by scene id.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: scene sheet not found (config key 'scenes')")
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, comment="#").fillna("")
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{path}: the scene sheet is empty (it lists no scenes)") from None
    missing_cols = [c for c in SHEET_COLUMNS if c not in df.columns]
    if missing_cols:
        raise ConfigError(f"{path}: missing column(s) {missing_cols}; columns are scene, path, format[, kind]")
    extra = [c for c in df.columns if c not in (*SHEET_COLUMNS, "kind")]
    if extra:
        raise ConfigError(f"{path}: unknown column(s) {extra}; columns are scene, path, format[, kind]")
    if "kind" not in df.columns:
        df["kind"] = ""
    if df.empty:
        raise ConfigError(f"{path}: the scene sheet lists no scenes")
    problems = []
    dup = sorted(df.loc[df["scene"].duplicated(), "scene"].unique())
    if dup:
        problems.append(f"duplicate scene id(s): {', '.join(dup)}")
    for _, row in df.iterrows():
        sid = row["scene"]
        if sid.count("/") != 1 or not all(sid.split("/")):
            problems.append(f"scene {sid!r}: id must be 'dataset/name' (e.g. llff/fern)")
        if row["format"] not in SHEET_FORMATS:
            problems.append(f"scene {sid!r}: format {row['format']!r} is not one of {list(SHEET_FORMATS)}")
        if row["kind"] not in ("", "forward_facing", "unbounded"):
            problems.append(f"scene {sid!r}: kind {row['kind']!r} is not forward_facing or unbounded")
    root = Path(data_root) if data_root else None
    resolved = []
    for p, fmt in zip(df["path"], df["format"]):
        q = Path(p)
        if root is not None and not q.is_absolute() and fmt != "demo":
            q = root / q
        resolved.append(str(q))
    df["path"] = resolved
    missing = [
        f"{sid} -> {p}"
        for sid, p, fmt in zip(df["scene"], df["path"], df["format"])
        if fmt != "demo" and not Path(p).is_dir()
    ]
    if missing:
        hint = f" under data_root {root}" if root else ""
        problems.append(f"{len(missing)} scene folder(s) not found{hint}:\n    " + "\n    ".join(missing))
    if problems:
        raise ConfigError(f"{path}: " + "\n  ".join(problems))
    return df.set_index("scene", drop=False)


# ---------------------------------------------------------------------------- schema generation


def _schema_for(tp) -> dict:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return dataclass_schema(tp)
    if origin in (typing.Union, types.UnionType):
        options = [_schema_for(a) for a in args if a is not type(None)]
        schema = options[0] if len(options) == 1 else {"anyOf": options}
        if type(None) in args:
            schema = (
                {"anyOf": [schema, {"type": "null"}]}
                if "anyOf" not in schema
                else {"anyOf": [*schema["anyOf"], {"type": "null"}]}
            )
        return schema
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema_for(args[0])}
        return {"type": "array", "prefixItems": [_schema_for(a) for a in args], "items": False, "minItems": len(args)}
    if origin is Literal:
        return {"enum": list(args)}
    return {
        bool: {"type": "boolean"},
        int: {"type": "integer"},
        float: {"type": "number"},
        str: {"type": "string"},
    }.get(tp, {})


def dataclass_schema(cls) -> dict:
    hints = typing.get_type_hints(cls)
    props = {f.name: _schema_for(hints[f.name]) for f in dataclasses.fields(cls) if f.init}
    return {"type": "object", "additionalProperties": False, "properties": props}


def config_schema() -> dict:
    """The JSON schema of the YAML config, generated from :class:`Settings`."""
    schema = dataclass_schema(Settings)
    for name, cls in _PRESET_SECTIONS.items():
        schema["properties"][name]["properties"]["preset"] = {"enum": sorted(cls.PRESETS)}
    schema["properties"]["variants"]["items"] = {"enum": list(VARIANTS)}
    schema["required"] = ["scenes"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "san pipeline configuration (generated by `python -m san.pipeline.settings`; do not edit by hand)",
        **schema,
    }


def main() -> None:
    import yaml

    yaml.safe_dump(config_schema(), sys.stdout, sort_keys=False, default_flow_style=None, width=120)


if __name__ == "__main__":
    main()
