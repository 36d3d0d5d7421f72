"""The pipeline's configuration: one frozen :class:`Settings` built from the validated YAML.

Flow: ``config/*.yaml`` -> JSON schema (``workflow/schemas/config.schema.yaml``, checked by
Snakemake's ``validate`` in ``common.smk``) -> :func:`parse_settings` -> frozen dataclasses that
every script rebuilds from the same mapping. Each stage's dataclass lives beside the code it
configures; this module only composes them. The JSON schema is *generated* from these
dataclasses (``san schema > workflow/schemas/config.schema.yaml``) and a test
checks that the committed schema is current, so schema and code cannot drift apart.

The scene sheet (TSV) is read and checked by :func:`read_scene_sheet`.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from san.config import ConfigError, from_dict, with_preset
from san.data.config import DemoSceneConfig, PreparePosesConfig
from san.evaluation.config import BenchmarkConfig, EvaluationConfig
from san.features.config import CacheFeaturesConfig
from san.imitation.config import VARIANTS, TrainImitationConfig
from san.mesh.config import MeshConfig
from san.models.config import TrainNeRFConfig
from san.report import ReportConfig
from san.teachers import TeacherConfig

STAGES = (
    "make_demo_scene",
    "prepare_poses",
    "train_nerf",
    "extract_mesh",
    "cache_features",
    "train_imitation",
    "evaluate_segmentation",
    "evaluate_benchmark_teacher",
    "render_benchmark_views",
    "evaluate_benchmark",
    "time_teacher",
    "report",
    "segment",
)
_GPU_STAGES = {
    "train_nerf",
    "cache_features",
    "train_imitation",
    "evaluate_segmentation",
    "evaluate_benchmark_teacher",
    "render_benchmark_views",
    "evaluate_benchmark",
    "time_teacher",
    "segment",
}


@dataclass(frozen=True)
class ResourceSpec:
    """Cluster resources of one rule. ``mem_mb`` is multiplied by the attempt number on retries.

    Attributes:
        runtime: wall-clock limit in minutes.
        mem_mb: memory in MB on the first attempt.
        cpus: CPU cores (also the rule's threads).
        gpu: GPUs.
    """

    runtime: int = field(default=30, metadata={"minimum": 1})
    mem_mb: int = field(default=4000, metadata={"minimum": 1})
    cpus: int = field(default=2, metadata={"minimum": 1})
    gpu: int = field(default=0, metadata={"minimum": 0})


@dataclass(frozen=True)
class ResourcesConfig:
    """Per-stage resources; any stage not given uses :data:`DEFAULT_RESOURCES`.

    Attributes:
        make_demo_scene, prepare_poses, train_nerf, extract_mesh, cache_features, train_imitation,
            evaluate_segmentation, evaluate_benchmark_teacher, render_benchmark_views, evaluate_benchmark,
            time_teacher, report, segment: that stage's resources (default: its entry of DEFAULT_RESOURCES).
    """

    make_demo_scene: ResourceSpec | None = None
    prepare_poses: ResourceSpec | None = None
    train_nerf: ResourceSpec | None = None
    extract_mesh: ResourceSpec | None = None
    cache_features: ResourceSpec | None = None
    train_imitation: ResourceSpec | None = None
    evaluate_segmentation: ResourceSpec | None = None
    evaluate_benchmark_teacher: ResourceSpec | None = None
    render_benchmark_views: ResourceSpec | None = None
    evaluate_benchmark: ResourceSpec | None = None
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
    "evaluate_benchmark_teacher": ResourceSpec(runtime=60, mem_mb=16000, cpus=4, gpu=1),
    "render_benchmark_views": ResourceSpec(runtime=60, mem_mb=16000, cpus=4, gpu=1),
    "evaluate_benchmark": ResourceSpec(runtime=60, mem_mb=16000, cpus=4, gpu=1),
    "time_teacher": ResourceSpec(runtime=30, mem_mb=16000, cpus=4, gpu=1),
    "report": ResourceSpec(runtime=10, mem_mb=2000, cpus=1),
    "segment": ResourceSpec(runtime=30, mem_mb=8000, cpus=2, gpu=1),
}
assert set(DEFAULT_RESOURCES) == set(STAGES) and all(
    (s in _GPU_STAGES) == bool(DEFAULT_RESOURCES[s].gpu) for s in STAGES if s != "extract_mesh"
)


@dataclass(frozen=True)
class SegmentConfig:
    """Batch segmentation (rule ``segment_prompts``): prompts TSV with ``scene, view, x, y, label``.

    Attributes:
        prompts: the prompts TSV (``san.interaction.prompts``); ``null``: no batch segmentation.
        export_mesh: also cut each object out of the extracted mesh.
        views_for_mesh: views whose masks are voted onto the mesh (the prompt view included).
    """

    prompts: str | None = None
    export_mesh: bool = True
    views_for_mesh: int = field(default=3, metadata={"minimum": 1})


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline reads from its YAML config.

    Attributes:
        scenes: the scene sheet (TSV: scene, format, path[, kind]).
        data_root: folder that relative scene paths in the sheet are under (default: the sheet's).
        results: the results folder.
        device: ``auto | cpu | cuda[:N]`` for every stage (``auto``: CUDA when present).
        seed: seeds rule train_imitation (its FIFO draws and head initialisation). The other
            stages have their own seeds (``nerf.seed``, ``features.seed``), so changing this one
            reruns only the imitation stage and what follows.
        variants: the ablation variants to train and evaluate (Table 2).
        poses: rule prepare_poses.
        demo_scene: rule make_demo_scene.
        nerf: rule train_nerf.
        mesh: rule extract_mesh.
        teacher: the 2D teacher every stage uses.
        features: rule cache_features.
        imitation: rule train_imitation.
        evaluation: rules evaluate_segmentation and time_teacher.
        report: rules make_tables and plot_figures.
        resources: cluster resources per stage.
        segment: rule segment_prompts.
    """

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
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
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


def coerce_command_line_values(config: dict, overrides: Mapping[str, Any]) -> dict:
    """Read the nested strings of Snakemake's ``--config`` values as the YAML values they stand for,
    in ``config`` (in place), before schema validation.

    Snakemake parses ``--config "resources={train_nerf: {mem_mb: 64000}}"`` into
    ``{'train_nerf': {'mem_mb': '64000'}}``; :func:`san.config.coerce_strings` reads ``'64000'`` as
    ``64000`` wherever the field is not a string, so the override validates like the same value in
    a YAML file. Only the command-line ``overrides`` (``workflow.config_settings.config``) are
    coerced: a quoted string in a YAML file stays a string, and a type error.

    Returns:
        ``config``.
    """
    from san.config import coerce_strings

    def merge(into: dict, values: Mapping[str, Any]) -> None:
        for k, v in values.items():
            if isinstance(v, Mapping) and isinstance(into.get(k), dict):
                merge(into[k], v)
            else:
                into[k] = v

    merge(config, coerce_strings(Settings, dict(overrides)))
    return config


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
SHEET_OPTIONAL = ("kind", "colmap_model", "benchmark", "text_prompts")
TEXT_PROMPT_SEPARATOR = ";"
"""Separates the prompts of the scene sheet's ``text_prompts`` column."""
SHEET_FORMATS = ("auto", "colmap", "llff", "blender", "nerfstudio", "demo")


def read_scene_sheet(path: str | Path, data_root: str | None = None):
    """Read and check the scene sheet (TSV: ``scene``, ``path``, ``format``, optional ``kind``,
    ``colmap_model``, ``benchmark`` and ``text_prompts``; see :mod:`san.utils.tsv` for comments and
    ``#`` in paths). ``benchmark`` is the scene's ground-truth layout folder
    (:mod:`san.data.gt_layout`), empty for none; ``demo`` scenes always have the one rule
    ``make_demo_scene`` writes. ``text_prompts`` is the scene's list of text prompts for the
    evaluation (protocol step 7), separated by ``;`` (``a red box;the ground``); empty: the config's
    ``evaluation.text_prompts`` (:func:`scene_text_prompts`). In the returned frame the column holds
    a tuple of stripped prompts (``()`` when empty).

    ``scene`` is ``dataset/name``; relative ``path`` values are resolved under ``data_root`` when
    it is set; ``colmap_model`` (a column only when the sheet has it) picks one of several COLMAP
    models (``sparse/1``). Every problem is
    collected and raised at once (empty sheet, duplicate ids, unknown formats or kinds, and *all*
    missing scene folders in one message, each bad row with its line number and raw text) before
    any job starts. Returns a DataFrame indexed by scene id.
    """
    from san.utils.tsv import SheetError, read_sheet

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: scene sheet not found (config key 'scenes')")
    try:
        sheet = read_sheet(path)
    except SheetError as e:
        raise ConfigError(str(e)) from None
    if not sheet.header:
        raise ConfigError(f"{path}: the scene sheet is empty (it lists no scenes)")
    columns = "scene, path, format[, kind][, colmap_model][, benchmark][, text_prompts]"
    missing_cols = [c for c in SHEET_COLUMNS if c not in sheet.header]
    if missing_cols:
        raise ConfigError(f"{path}: missing column(s) {missing_cols}; columns are {columns}")
    extra = [c for c in sheet.header if c not in (*SHEET_COLUMNS, *SHEET_OPTIONAL)]
    if extra:
        raise ConfigError(f"{path}: unknown column(s) {extra}; columns are {columns}")
    df = sheet.frame()
    for column in SHEET_OPTIONAL:
        if column not in df.columns:
            df[column] = ""
    if df.empty:
        raise ConfigError(f"{path}: the scene sheet lists no scenes")
    problems = []
    texts: list[tuple[str, ...]] = []
    dup = sorted(df.loc[df["scene"].duplicated(), "scene"].unique())
    if dup:
        problems.append(f"duplicate scene id(s): {', '.join(dup)}")
    for _, row in df.iterrows():
        sid = row["scene"]
        row_problems = []
        if sid.count("/") != 1 or not all(sid.split("/")):
            row_problems.append(f"scene {sid!r}: id must be 'dataset/name' (e.g. llff/fern)")
        if row["format"] not in SHEET_FORMATS:
            row_problems.append(f"scene {sid!r}: format {row['format']!r} is not one of {list(SHEET_FORMATS)}")
        if row["kind"] not in ("", "forward_facing", "unbounded"):
            row_problems.append(f"scene {sid!r}: kind {row['kind']!r} is not forward_facing or unbounded")
        if row.get("colmap_model") and row["format"] not in ("auto", "colmap"):
            row_problems.append(f"scene {sid!r}: colmap_model {row['colmap_model']!r} needs format colmap or auto")
        prompts, prompt_problem = _parse_text_prompts(row["text_prompts"])
        texts.append(prompts)
        if prompt_problem:
            row_problems.append(f"scene {sid!r}: {prompt_problem}")
        if row_problems:
            problems.append("; ".join(row_problems) + f"\n    line {row['line']}: {sheet.raw_line(row['line'])!r}")
    root = Path(data_root) if data_root else None
    resolved = []
    for p, fmt in zip(df["path"], df["format"]):
        q = Path(p)
        if root is not None and not q.is_absolute() and fmt != "demo":
            q = root / q
        resolved.append(str(q))
    df["path"] = resolved
    df["benchmark"] = [
        str(root / b) if b and root is not None and not Path(b).is_absolute() else b for b in df["benchmark"]
    ]
    for sid, b in zip(df["scene"], df["benchmark"]):
        if b and not (Path(b) / "prompts.json").is_file():
            problems.append(f"scene {sid!r}: benchmark folder {b} has no prompts.json (layout: san.data.gt_layout)")
    missing = [
        f"{sid} -> {p} (line {line})"
        for sid, p, fmt, line in zip(df["scene"], df["path"], df["format"], df["line"])
        if fmt != "demo" and not Path(p).is_dir()
    ]
    if missing:
        hint = f" under data_root {root}" if root else ""
        problems.append(f"{len(missing)} scene folder(s) not found{hint}:\n    " + "\n    ".join(missing))
    if problems:
        raise ConfigError(f"{path}: " + "\n  ".join(problems))
    import pandas as pd

    df["text_prompts"] = pd.Series(texts, index=df.index, dtype=object)
    return df.drop(columns="line").set_index("scene", drop=False)


def _parse_text_prompts(value: str) -> tuple[tuple[str, ...], str | None]:
    """A ``text_prompts`` cell -> (the stripped prompts, ``None``) or ``((), the problem)``."""
    if not value.strip():
        return (), None
    prompts = tuple(p.strip() for p in value.split(TEXT_PROMPT_SEPARATOR))
    empty = [i for i, p in enumerate(prompts, 1) if not p]
    if empty:
        return (), (
            f"text_prompts {value!r}: empty prompt (number {', '.join(map(str, empty))} of {len(prompts)}); "
            f"prompts are separated by {TEXT_PROMPT_SEPARATOR!r}, with no empty one between, before or after them"
        )
    repeated = sorted({p for p in prompts if prompts.count(p) > 1})
    if repeated:
        return (), f"text_prompts {value!r}: prompt(s) {repeated} listed more than once"
    return prompts, None


def scene_text_prompts(scenes, scene_id: str, default: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The text prompts evaluated on one scene (protocol step 7): the scene sheet's ``text_prompts``
    for that row when it lists any, else ``default`` (the config's ``evaluation.text_prompts``).

    Args:
        scenes: :func:`read_scene_sheet`'s frame.
        scene_id: ``dataset/name``.
        default: ``evaluation.text_prompts``.

    Raises:
        KeyError: ``scene_id`` is not in the sheet.
    """
    own = scenes.loc[scene_id, "text_prompts"] if "text_prompts" in scenes.columns else ()
    return list(own) if len(own) else list(default)


def prompt_scene_ids(prompts: str | Path, scenes, sheet: str | Path) -> list[str]:
    """The scene ids of a prompts TSV, parsed and checked at DAG build (columns, types, and every id
    listed in the scene sheet ``sheet``, whose rows are ``scenes``).

    Raises:
        ConfigError: naming the prompts file, and the sheet for ids it does not list.
    """
    from san.interaction.prompts import PromptError, read_prompts

    try:
        df = read_prompts(prompts)
    except PromptError as e:
        raise ConfigError(str(e)) from None
    unknown = [(sid, int(line)) for sid, line in zip(df["scene"], df["line"]) if sid not in scenes.index]
    if unknown:
        listed = ", ".join(f"{sid!r} (line {line})" for sid, line in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise ConfigError(
            f"{prompts}: scene(s) {listed} not in the scene sheet {sheet} (it lists: {', '.join(scenes.index)})"
        )
    return list(dict.fromkeys(df["scene"]))


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


SCHEMA_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems")
"""Field ``metadata`` keys copied into the schema as they are (ranges); ``metadata["help"]`` is the
field's description."""


def attribute_docs(cls) -> dict[str, str]:
    """Field descriptions from the ``Attributes:`` section of a dataclass's docstring (Google style;
    ``a, b: text`` describes both; indented lines continue the entry)."""
    lines = (inspect.getdoc(cls) or "").splitlines()
    docs: dict[str, str] = {}
    current: list[str] = []
    indent = None
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:") + 1
    except StopIteration:
        return docs
    for line in lines[start:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth == 0:
            break
        indent = depth if indent is None else indent
        entry = re.match(r"([A-Za-z_][\w]*(?:\s*,\s*[A-Za-z_][\w]*)*)\s*:\s*(.*)", line.strip())
        if depth == indent and entry:
            current = [n.strip() for n in entry.group(1).split(",")]
            for name in current:
                docs[name] = entry.group(2).strip()
        elif current:
            for name in current:
                docs[name] = f"{docs[name]} {line.strip()}".strip()
    return docs


def _default(f: dataclasses.Field) -> Any:
    """A field's default as JSON (``dataclasses.MISSING`` when it has none or it is a section)."""
    value = f.default
    if value is dataclasses.MISSING:
        return value
    if isinstance(value, tuple):
        value = list(value)
    ok = (
        value is None
        or isinstance(value, (bool, int, float, str))
        or (isinstance(value, list) and all(isinstance(v, (bool, int, float, str)) for v in value))
    )
    return value if ok else dataclasses.MISSING


def dataclass_schema(cls) -> dict:
    """The JSON schema of a config dataclass: types from the annotations, ``description`` from
    ``metadata["help"]`` or the ``Attributes:`` docstring, ``default`` from the field (not for
    sections with presets, whose values the preset sets), ranges from :data:`SCHEMA_KEYWORDS`."""
    hints = typing.get_type_hints(cls)
    docs = attribute_docs(cls)
    presets = bool(getattr(cls, "PRESETS", None))
    props = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        schema = _schema_for(hints[f.name])
        description = f.metadata.get("help") or docs.get(f.name)
        extra = {k: f.metadata[k] for k in SCHEMA_KEYWORDS if k in f.metadata}
        default = dataclasses.MISSING if presets else _default(f)
        props[f.name] = {
            **schema,
            **({"description": description} if description else {}),
            **extra,
            **({"default": default} if default is not dataclasses.MISSING else {}),
        }
    out = {"type": "object", "additionalProperties": False, "properties": props}
    summary = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ").strip()
    return {"description": summary, **out} if summary else out


def config_schema() -> dict:
    """The JSON schema of the YAML config, generated from :class:`Settings`."""
    schema = dataclass_schema(Settings)
    for name, cls in _PRESET_SECTIONS.items():
        schema["properties"][name]["properties"]["preset"] = {
            "enum": sorted(cls.PRESETS),
            "description": "named preset whose values apply under the keys given here (default: the dataclass defaults)",
        }
    schema["properties"]["variants"]["items"] = {"enum": list(VARIANTS)}
    schema["required"] = ["scenes"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "description": "san pipeline configuration (generated by `san schema` from the config dataclasses; do not edit by hand)",
    }


def schema_yaml() -> str:
    """:func:`config_schema` as the YAML of ``workflow/schemas/config.schema.yaml`` (``san schema``)."""
    import yaml

    return yaml.safe_dump(config_schema(), sort_keys=False, default_flow_style=None, width=120)
