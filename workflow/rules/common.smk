# Configuration, the scene sheet and the input functions every rule uses.
#
# The YAML config is validated against workflow/schemas/config.schema.yaml (unknown keys and wrong
# types fail with the key's name), then parsed once into frozen dataclasses (san.pipeline.settings)
# that the scripts rebuild from the same mapping. Nothing mutates either afterwards.
import os
from pathlib import Path

import pandas as pd
from snakemake.utils import validate

from san.pipeline.settings import parse_settings, read_scene_sheet

validate(config, workflow.source_path("../schemas/config.schema.yaml"), set_default=False)
SETTINGS = parse_settings(config)
SCENES = read_scene_sheet(config["scenes"], data_root=config.get("data_root"))
RESULTS = SETTINGS.results
VARIANTS = list(SETTINGS.variants)
TEACHER = SETTINGS.teacher.name


wildcard_constraints:
    dataset=r"[A-Za-z0-9_\-]+",
    scene=r"[A-Za-z0-9_\-]+",
    variant=r"full|no_aug|no_cache|mesh|no_corr",
    teacher=r"[A-Za-z0-9_\-]+",


def scene_row(wildcards):
    return SCENES.loc[f"{wildcards.dataset}/{wildcards.scene}"]


def get_scene_source(wildcards):
    """The captured scene's folder, or the demo generator's output for format ``demo``."""
    row = scene_row(wildcards)
    if row["format"] == "demo":
        return expand(rules.make_demo_scene.output.marker, dataset=wildcards.dataset, scene=wildcards.scene)[0]
    return row["path"]


def get_scene_ids():
    return list(SCENES.index)


def scene_dir(scene_id):
    return f"{RESULTS}/{scene_id}"


def get_final_outputs():
    outputs = []
    for sid in get_scene_ids():
        outputs.append(f"{scene_dir(sid)}/mesh/mesh.json")
        outputs.extend(f"{scene_dir(sid)}/evaluation/{v}/metrics.json" for v in VARIANTS)
    outputs.extend(rules.make_tables.output)
    outputs.extend(rules.plot_figures.output)
    return outputs


def get_all_evaluations(wildcards=None):
    return [f"{scene_dir(sid)}/evaluation/{v}/metrics.json" for sid in get_scene_ids() for v in VARIANTS]


def get_all_qualitative(wildcards=None):
    return [f"{scene_dir(sid)}/evaluation/{v}/qualitative.png" for sid in get_scene_ids() for v in VARIANTS]


def get_all_training_curves(wildcards=None):
    curves = [f"{scene_dir(sid)}/nerf/training_curve.csv" for sid in get_scene_ids()]
    curves += [f"{scene_dir(sid)}/imitation/{v}/training_curve.csv" for sid in get_scene_ids() for v in VARIANTS]
    return curves


def get_mesh_for_variant(wildcards):
    """The mesh-surface variant also needs the extracted mesh."""
    if wildcards.variant == "mesh":
        return expand(rules.extract_mesh.output.normalized, dataset=wildcards.dataset, scene=wildcards.scene)
    return []


def settings_of(*sections):
    """Canonical JSON of the parsed config sections a stage reads. Given as ``params``, it lets
    Snakemake rerun the stage (and what follows) when one of its settings changes."""
    import dataclasses
    import json

    values = {}
    for name in sections:
        value = getattr(SETTINGS, name)
        values[name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return json.dumps(values, sort_keys=True, default=str)


def resources_for(stage):
    """Per-rule resources from config ``resources.<stage>`` (runtime in minutes, mem_mb, cpus, gpu).

    ``mem_mb`` grows with the attempt, so a job that ran out of memory is resubmitted with more.
    """
    r = SETTINGS.resources.for_stage(stage)
    return dict(
        runtime=r.runtime,
        mem_mb=lambda wildcards, attempt: r.mem_mb * attempt,
        cpus_per_task=r.cpus,
        gpu=r.gpu,
    )


def get_ground_truth(wildcards):
    """The demo generator's folder (ground-truth meshes) for ``demo`` scenes, else ``None``."""
    if scene_row(wildcards)["format"] == "demo":
        return expand(rules.make_demo_scene.output.folder, dataset=wildcards.dataset, scene=wildcards.scene)[0]
    return None


def get_segmentation_targets(wildcards=None):
    """``segmentation/full/summary.json`` of every scene listed in ``segment.prompts``."""
    if not SETTINGS.segment.prompts:
        raise ValueError("config segment.prompts is not set: point it to a TSV with columns scene, view, x, y, label")
    scenes = pd.read_csv(SETTINGS.segment.prompts, sep="\t", dtype=str)["scene"].unique()
    return [f"{scene_dir(s)}/segmentation/full/summary.json" for s in scenes]


def get_teacher_checkpoint(wildcards):
    """The teacher's weights file, so that a missing checkpoint is reported before any job runs."""
    return [SETTINGS.teacher.checkpoint] if SETTINGS.teacher.checkpoint else []
