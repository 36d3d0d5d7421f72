"""``san.pipeline.settings``: the YAML config -> frozen :class:`Settings`, the generated JSON schema
(what Snakemake's ``validate`` checks) and the scene sheet."""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import typing
from contextlib import redirect_stdout
from pathlib import Path

import jsonschema
import pytest
import yaml
from snakemake.utils import update_config

from san.config import ConfigError, from_dict
from san.pipeline.settings import (
    DEFAULT_RESOURCES,
    STAGES,
    VARIANTS,
    Settings,
    config_schema,
    parse_settings,
    read_scene_sheet,
)

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "workflow" / "schemas" / "config.schema.yaml"


def _yaml(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


def _base() -> dict:
    return _yaml("config.yaml")


def _paper() -> dict:
    """``--configfile config/paper.yaml`` on top of the default config, merged as Snakemake does."""
    config = _base()
    update_config(config, _yaml("paper.yaml"))
    return config


def _with(config: dict, path: tuple[str, ...], value) -> dict:
    config = copy.deepcopy(config)
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return config


def _schema_errors(config: dict) -> list[jsonschema.ValidationError]:
    schema = config_schema()
    validator_cls = jsonschema.Draft202012Validator  # what snakemake.utils.validate uses
    return list(validator_cls(schema).iter_errors(config))


def _flat(errors) -> list[jsonschema.ValidationError]:
    """The errors and, for ``anyOf`` (Optional sections), the errors of each alternative."""
    out = []
    for e in errors:
        out.append(e)
        out.extend(_flat(e.context or []))
    return out


def _preset_sections() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings) if hasattr(hints[f.name], "PRESETS")}


# -------------------------------------------------------------------------------- parse_settings


def test_default_config_parses_with_cpu_presets():
    config = _base()
    before = copy.deepcopy(config)
    s = parse_settings(config)
    assert config == before  # Snakemake's config mapping is not mutated
    assert (s.scenes, s.data_root, s.results, s.device, s.seed) == ("config/scenes.tsv", None, "results", "auto", 0)
    assert s.variants == ("full", "no_aug", "mesh")
    assert s.teacher.name == "sam_tiny_procedural" and s.teacher.checkpoint is None
    assert s.mesh.resolution == 256 and s.imitation.steps == 300 and s.nerf.steps == 2000  # demo budget overrides
    for name, cls in _preset_sections().items():
        if name in config:
            overrides = {k: v for k, v in config[name].items() if k != "preset"}
            expected = from_dict(cls, {**cls.PRESETS[config[name]["preset"]], **overrides}, f"config.{name}")
            assert getattr(s, name) == expected, name


def test_paper_config_merged_over_default():
    config = _paper()
    s = parse_settings(config)
    assert s.scenes == "config/paper_scenes.tsv" and s.data_root == "data"
    assert s.variants == ("full", "no_aug", "no_cache", "mesh")
    assert s.device == "auto" and s.results == "results"  # kept from config.yaml
    assert s.teacher.name == "sam_vit_h" and s.teacher.checkpoint == "checkpoints/sam_vit_h_4b8939.pth"
    assert s.mesh.resolution == 512 and s.imitation.steps == 10_000
    for name, cls in _preset_sections().items():
        if name in config:
            assert config[name]["preset"] == "paper"
            overrides = {k: v for k, v in config[name].items() if k != "preset"}
            assert getattr(s, name) == from_dict(cls, {**cls.PRESETS["paper"], **overrides}, f"config.{name}"), name
    assert parse_settings(_base()).mesh != s.mesh  # the merge really switched the presets


def test_explicit_keys_override_the_preset():
    s = parse_settings(_with(_paper(), ("mesh", "resolution"), 64))
    assert s.mesh.resolution == 64 and s.mesh.chunk == 262_144  # the rest of the paper preset stays


def test_minimal_config_uses_defaults():
    s = parse_settings({"scenes": "s.tsv"})
    assert s == Settings(scenes="s.tsv")
    with pytest.raises(ConfigError, match=r"config\.scenes"):
        parse_settings({"seed": 1})


@pytest.mark.parametrize("name", sorted(_preset_sections()))
def test_every_section_with_presets_accepts_them(name):
    cls = _preset_sections()[name]
    for preset in cls.PRESETS:
        s = parse_settings({"scenes": "s.tsv", name: {"preset": preset}})
        assert getattr(s, name) == from_dict(cls, cls.PRESETS[preset], f"config.{name}")
        assert not _schema_errors({"scenes": "s.tsv", name: {"preset": preset}})
    with pytest.raises(ConfigError, match=rf"config\.{name}\.preset.*'gpu'"):
        parse_settings({"scenes": "s.tsv", name: {"preset": "gpu"}})
    assert _schema_errors({"scenes": "s.tsv", name: {"preset": "gpu"}})


UNKNOWN_KEYS = [
    ("bogus",),
    ("nerf", "stepz"),
    ("mesh", "resolutoin"),
    ("imitation", "stepz"),
    ("teacher", "nmae"),
    ("poses", "bogus"),
    ("demo_scene", "bogus"),
    ("features", "bogus"),
    ("evaluation", "bogus"),
    ("segment", "bogus"),
    ("resources", "trian_nerf"),
    ("resources", "train_nerf", "mem_mbb"),
]


@pytest.mark.parametrize("path", UNKNOWN_KEYS, ids=".".join)
def test_unknown_key_anywhere_is_named(path):
    config = _with(_base(), path, 1)
    with pytest.raises(ConfigError) as info:
        parse_settings(config)
    assert "config." + ".".join(path) in str(info.value)
    errors = _schema_errors(config)
    assert any(list(e.absolute_path) == list(path[:-1]) and repr(path[-1]) in e.message for e in _flat(errors)), errors


WRONG_TYPES = [
    (("seed",), "0"),
    (("seed",), True),
    (("device",), 0),
    (("variants",), "full"),
    (("mesh", "resolution"), "high"),
    (("mesh", "colors"), "yes"),
    (("teacher", "checkpoint"), 3),
    (("imitation", "steps"), 1.5),
    (("resources", "train_nerf", "gpu"), True),
    (("segment", "views_for_mesh"), None),
]


@pytest.mark.parametrize("path, value", WRONG_TYPES, ids=lambda v: ".".join(v) if isinstance(v, tuple) else repr(v))
def test_wrong_type_is_named(path, value):
    config = _with(_base(), path, value)
    with pytest.raises(ConfigError, match="config." + ".".join(path)):
        parse_settings(config)
    assert any(list(e.absolute_path) == list(path) for e in _flat(_schema_errors(config)))


def test_bad_variant():
    config = _with(_base(), ("variants",), ["full", "no_agu"])
    with pytest.raises(ConfigError, match="no_agu"):
        parse_settings(config)
    assert _schema_errors(config)
    assert set(parse_settings(_with(_base(), ("variants",), list(VARIANTS))).variants) == set(VARIANTS)


@pytest.mark.parametrize(
    "device, ok", [("auto", True), ("cpu", True), ("cuda", True), ("cuda:1", True), ("tpu", False), ("gpu", False)]
)
def test_device(device, ok):
    config = _with(_base(), ("device",), device)
    if ok:
        assert parse_settings(config).device == device
    else:
        with pytest.raises(ConfigError, match="config.device"):
            parse_settings(config)


def test_settings_are_frozen_all_the_way_down():
    seen = set()

    def walk(cls):
        if cls in seen:
            return
        seen.add(cls)
        assert cls.__dataclass_params__.frozen, f"{cls.__qualname__} is not frozen"
        for tp in typing.get_type_hints(cls).values():
            for t in (tp, *typing.get_args(tp)):
                if dataclasses.is_dataclass(t):
                    walk(t)

    walk(Settings)
    assert len(seen) > 5
    s = parse_settings(_base())
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.seed = 1  # type: ignore[misc]


# ---------------------------------------------------------------------------------------- resources


def test_resources_defaults_and_overrides():
    base = _base()
    base.pop("resources", None)
    s = parse_settings(base)
    for stage in STAGES:
        assert s.resources.for_stage(stage) == DEFAULT_RESOURCES[stage]
    # config.yaml's partial override (cpus only) keeps the stage's GPU, memory and runtime.
    demo = parse_settings(_base()).resources.for_stage("train_imitation")
    assert demo == dataclasses.replace(DEFAULT_RESOURCES["train_imitation"], cpus=1)
    with pytest.raises(ConfigError, match="unknown stage 'bogus'"):
        s.resources.for_stage("bogus")
    full = {"runtime": 5, "mem_mb": 1000, "cpus": 1, "gpu": 0}
    s = parse_settings(_with(_base(), ("resources", "report"), full))
    assert dataclasses.asdict(s.resources.for_stage("report")) == full


def test_partial_resource_override_keeps_the_stage_defaults():
    """Raising train_nerf's memory must not silently drop its GPU (or shrink its runtime)."""
    s = parse_settings(_with(_base(), ("resources", "train_nerf"), {"mem_mb": 64000}))
    spec = s.resources.for_stage("train_nerf")
    assert spec.mem_mb == 64000
    assert (spec.gpu, spec.runtime, spec.cpus) == (1, 120, 4)


# ------------------------------------------------------------------------------------------ schema


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(config_schema())


def test_committed_schema_is_current():
    assert SCHEMA_FILE.is_file(), f"{SCHEMA_FILE} missing: san schema > {SCHEMA_FILE.relative_to(REPO)}"
    committed = yaml.safe_load(SCHEMA_FILE.read_text())
    assert committed == json.loads(json.dumps(config_schema())), (
        f"{SCHEMA_FILE.relative_to(REPO)} is stale: regenerate it with san schema > workflow/schemas/config.schema.yaml"
    )


def test_san_schema_prints_the_schema_as_yaml():
    from san.cli import main

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["schema"]) == 0
    assert yaml.safe_load(buf.getvalue()) == json.loads(json.dumps(config_schema()))


def test_shipped_configs_pass_the_schema():
    for config in (_base(), _paper(), _with(_paper(), ("data_root",), "/data/nerf")):
        assert not _schema_errors(config), [e.message for e in _schema_errors(config)]


def test_schema_accepts_what_parse_settings_accepts():
    config = _base()
    config.update(
        seed=3,
        variants=list(VARIANTS),
        imitation={"preset": "cpu", "fov_range_deg": [40.0, 60.0], "render_size": None},
        resources={"train_nerf": {"mem_mb": 32000, "gpu": 1}},
        segment={"prompts": "prompts.tsv", "export_mesh": False},
    )
    parse_settings(config)
    assert not _schema_errors(config), [e.message for e in _schema_errors(config)]


def test_schema_rejects_a_wrong_length_tuple():
    config = _with(_base(), ("imitation", "fov_range_deg"), [40.0, 50.0, 60.0])
    with pytest.raises(ConfigError, match=r"config\.imitation\.fov_range_deg"):
        parse_settings(config)
    assert _schema_errors(config)


def test_schema_requires_scenes():
    config = _base()
    del config["scenes"]
    assert any("scenes" in e.message for e in _schema_errors(config))


# ------------------------------------------------------------------------------------- scene sheet


def _sheet(tmp_path: Path, rows: list[str], header: str = "scene\tpath\tformat\tkind") -> Path:
    path = tmp_path / "scenes.tsv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _sheet_error(path: Path, data_root=None) -> str:
    with pytest.raises(ConfigError) as info:
        read_scene_sheet(path, data_root=data_root)
    return str(info.value)


def test_sheet_reads_and_resolves_under_data_root(tmp_path):
    root = tmp_path / "data"
    (root / "nerf_llff_data" / "fern").mkdir(parents=True)
    absolute = tmp_path / "elsewhere" / "garden"
    absolute.mkdir(parents=True)
    sheet = _sheet(
        tmp_path,
        [
            "llff/fern\tnerf_llff_data/fern\tllff\tforward_facing",
            f"mipnerf360/garden\t{absolute}\tcolmap\tunbounded",
            "demo/demo\tgenerated\tdemo\t",
        ],
    )
    df = read_scene_sheet(sheet, data_root=str(root))
    assert list(df.index) == ["llff/fern", "mipnerf360/garden", "demo/demo"]
    assert df.loc["llff/fern", "path"] == str(root / "nerf_llff_data" / "fern")
    assert df.loc["mipnerf360/garden", "path"] == str(absolute)  # absolute paths stay
    assert df.loc["demo/demo", "path"] == "generated"  # the demo row needs no folder
    assert df.loc["llff/fern", "scene"] == "llff/fern" and df.loc["llff/fern", "format"] == "llff"
    assert df.loc["demo/demo", "kind"] == ""


def test_sheet_kind_column_is_optional(tmp_path):
    (tmp_path / "fern").mkdir()
    df = read_scene_sheet(_sheet(tmp_path, [f"llff/fern\t{tmp_path / 'fern'}\tauto"], header="scene\tpath\tformat"))
    assert df.loc["llff/fern", "kind"] == ""


def test_shipped_demo_sheet_needs_no_data():
    df = read_scene_sheet(REPO / "config" / "scenes.tsv", data_root="/nonexistent/root")
    assert list(df.index) == ["demo/demo"]
    assert df.loc["demo/demo", "format"] == "demo" and df.loc["demo/demo", "path"] == "generated"


def test_paper_sheet_with_all_folders(tmp_path):
    sheet = REPO / "config" / "paper_scenes.tsv"
    rows = [
        r
        for r in csv.reader(
            (line for line in sheet.read_text().splitlines() if not line.startswith("#")), delimiter="\t"
        )
    ][1:]
    for _, rel, _, _ in rows:
        (tmp_path / rel).mkdir(parents=True)
    df = read_scene_sheet(sheet, data_root=str(tmp_path))
    assert len(df) == 15 == len(rows)
    assert set(df["kind"]) == {"unbounded", "forward_facing"} and set(df["format"]) == {"colmap", "llff"}
    assert all(Path(p).is_dir() for p in df["path"])


def test_all_missing_folders_in_one_error(tmp_path):
    sheet = REPO / "config" / "paper_scenes.tsv"
    (tmp_path / "360_v2" / "garden").mkdir(parents=True)
    msg = _sheet_error(sheet, data_root=str(tmp_path))
    assert "14 scene folder(s) not found" in msg and str(tmp_path) in msg
    for sid in ("mipnerf360/bicycle", "mipnerf360/bonsai", "llff/fern", "llff/trex"):
        assert sid in msg
    assert "mipnerf360/garden" not in msg


def test_empty_sheet(tmp_path):
    assert "lists no scenes" in _sheet_error(_sheet(tmp_path, []))


def test_zero_byte_sheet_is_a_config_error(tmp_path):
    (tmp_path / "scenes.tsv").write_text("")
    _sheet_error(tmp_path / "scenes.tsv")


def test_missing_sheet(tmp_path):
    assert "scene sheet not found" in _sheet_error(tmp_path / "nope.tsv")


def test_sheet_columns(tmp_path):
    assert "missing column(s) ['format']" in _sheet_error(_sheet(tmp_path, ["demo/demo\tx"], header="scene\tpath"))
    msg = _sheet_error(_sheet(tmp_path, ["demo/demo\tx\tdemo\t\tz"], header="scene\tpath\tformat\tkind\tnotes"))
    assert "unknown column(s) ['notes']" in msg


def test_sheet_collects_every_problem(tmp_path):
    sheet = _sheet(
        tmp_path,
        [
            "demo/demo\tg\tdemo\t",
            "demo/demo\tg\tdemo\t",  # duplicate
            "fern\tf\tdemo\t",  # no dataset
            "a/b/c\tf\tdemo\t",  # too many parts
            "llff/\tf\tdemo\t",  # empty name
            "x/y\tf\tblendr\t",  # unknown format
            "x/z\tf\tdemo\tspherical",  # unknown kind
            "x/missing_one\tnowhere1\tllff\t",
            "x/missing_two\tnowhere2\tcolmap\t",
        ],
    )
    (tmp_path / "f").mkdir()  # x/y's folder exists: only its format is wrong
    msg = _sheet_error(sheet, data_root=str(tmp_path))
    assert "duplicate scene id(s): demo/demo" in msg
    for sid in ("'fern'", "'a/b/c'", "'llff/'"):
        assert f"scene {sid}: id must be 'dataset/name'" in msg
    assert "'blendr' is not one of" in msg and "'spherical'" in msg
    assert "2 scene folder(s) not found" in msg
    assert f"x/missing_one -> {tmp_path / 'nowhere1'}" in msg and f"x/missing_two -> {tmp_path / 'nowhere2'}" in msg
    assert "x/y ->" not in msg


def test_schema_carries_descriptions_defaults_and_ranges():
    from dataclasses import dataclass, field

    from san.pipeline.settings import attribute_docs, dataclass_schema

    @dataclass(frozen=True)
    class Section:
        """A section.

        Attributes:
            steps: optimisation steps,
                over two lines.
            lr, lr_final: learning rates.
        """

        steps: int = field(default=10, metadata={"minimum": 1})
        lr: float = 0.1
        lr_final: float = field(default=0.01, metadata={"help": "final rate", "exclusiveMinimum": 0})
        names: tuple[str, ...] = ("a", "b")

    assert attribute_docs(Section) == {
        "steps": "optimisation steps, over two lines.",
        "lr": "learning rates.",
        "lr_final": "learning rates.",
    }
    props = dataclass_schema(Section)["properties"]
    assert props["steps"] == {
        "type": "integer",
        "description": "optimisation steps, over two lines.",
        "minimum": 1,
        "default": 10,
    }
    assert props["lr_final"] == {"type": "number", "description": "final rate", "exclusiveMinimum": 0, "default": 0.01}
    assert props["names"]["default"] == ["a", "b"]
    schema = config_schema()
    assert "train_imitation" in schema["properties"]["seed"]["description"]
    nerf = schema["properties"]["nerf"]["properties"]
    assert nerf["steps"]["minimum"] == 1 and "default" not in nerf["steps"]  # presets set nerf's values
    errors = _schema_errors(_with(_base(), ("nerf", "steps"), 0))
    assert [e.message for e in errors] == ["0 is less than the minimum of 1"]


def test_local_slurm_config_sizes_every_stage_for_its_two_cpu_node():
    """CI's single-node cluster has 2 CPUs: a stage left at its default resources (e.g. 4 CPUs)
    would stay pending forever (Slurm reason PartitionConfig), so every stage is sized here."""
    import yaml

    from san.pipeline.settings import STAGES

    local = yaml.safe_load((REPO / "config" / "slurm_local.yaml").read_text())["resources"]
    missing = [s for s in STAGES if s not in local]
    assert not missing, f"config/slurm_local.yaml sizes no resources for {missing}"
    assert all(spec["cpus"] <= 2 for spec in local.values()), local


# --------------------------------------------------------------------- per-scene text prompts


def test_sheet_text_prompts_column_absent_empty_and_a_list(tmp_path):
    from san.pipeline.settings import scene_text_prompts

    absent = read_scene_sheet(_sheet(tmp_path, ["demo/demo\tgenerated\tdemo\t"]))
    assert absent.loc["demo/demo", "text_prompts"] == ()
    assert scene_text_prompts(absent, "demo/demo", ("a dog",)) == ["a dog"]  # the config's list
    assert scene_text_prompts(absent, "demo/demo") == []
    header = "scene\tpath\tformat\ttext_prompts"
    df = read_scene_sheet(
        _sheet(tmp_path, ["demo/a\tgenerated\tdemo\t a red box ;the ground", "demo/b\tgenerated\tdemo\t"], header)
    )
    assert df.loc["demo/a", "text_prompts"] == ("a red box", "the ground") and df.loc["demo/b", "text_prompts"] == ()
    assert scene_text_prompts(df, "demo/a", ("a dog",)) == ["a red box", "the ground"]  # the scene's own list wins
    assert scene_text_prompts(df, "demo/b", ("a dog",)) == ["a dog"]  # empty cell: the config's list
    one = read_scene_sheet(_sheet(tmp_path, ["demo/a\tgenerated\tdemo\ta dog"], header))
    assert scene_text_prompts(one, "demo/a", ()) == ["a dog"]


@pytest.mark.parametrize(
    "cell, problem",
    [
        ("a red box;;the ground", "empty prompt (number 2 of 3)"),
        ("a red box;", "empty prompt (number 2 of 2)"),
        (";a red box", "empty prompt (number 1 of 2)"),
        ("a red box; ;the ground", "empty prompt (number 2 of 3)"),
        ("a dog;a cat;a dog", "prompt(s) ['a dog'] listed more than once"),
    ],
)
def test_sheet_malformed_text_prompts_name_the_file_the_row_and_the_problem(tmp_path, cell, problem):
    header = "scene\tpath\tformat\ttext_prompts"
    sheet = _sheet(tmp_path, ["demo/ok\tgenerated\tdemo\ta dog", f"demo/bad\tgenerated\tdemo\t{cell}"], header)
    msg = _sheet_error(sheet)
    assert msg.startswith(f"{sheet}: scene 'demo/bad': text_prompts {cell!r}: {problem}"), msg
    assert f"line 3: {'demo/bad' + chr(9) + 'generated' + chr(9) + 'demo' + chr(9) + cell!r}" in msg
    assert "demo/ok" not in msg


def test_prepare_poses_row_leaves_out_the_text_prompts():
    """Editing a scene's text prompts must not change rule prepare_poses's params (a rerun of the
    NeRF): poses.smk drops the column from the row it passes."""
    poses = (REPO / "workflow" / "rules" / "poses.smk").read_text()
    assert 'scene_row(wildcards).drop(labels=["text_prompts"]).to_dict()' in poses
    evaluation = (REPO / "workflow" / "rules" / "evaluation.smk").read_text()
    rule = evaluation.split("rule evaluate_segmentation:")[1]
    assert "text_prompts=get_text_prompts," in rule
