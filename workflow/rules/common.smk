# Configuration, the scene sheet and the input functions every rule uses.
#
# The YAML config is validated against workflow/schemas/config.schema.yaml (unknown keys and wrong
# types fail with the key's name), then parsed once into frozen dataclasses (san.pipeline.settings)
# that the scripts rebuild from the same mapping. Nothing mutates either afterwards.
import os
from pathlib import Path

from snakemake.utils import validate

from san.pipeline.settings import VARIANTS as ALL_VARIANTS
from san.pipeline.settings import coerce_command_line_values, parse_settings, prompt_scene_ids, read_scene_sheet
from san.pipeline.settings import scene_text_prompts
from san.teachers.preflight import check_teacher, check_text_prompts

coerce_command_line_values(config, workflow.config_settings.config)  # nested --config values arrive as strings
validate(config, workflow.source_path("../schemas/config.schema.yaml"), set_default=False)
SETTINGS = parse_settings(config)
SCENES = read_scene_sheet(config["scenes"], data_root=config.get("data_root"))
RESULTS = SETTINGS.results
VARIANTS = list(SETTINGS.variants)
TEACHER = SETTINGS.teacher.name
check_teacher(SETTINGS.teacher, open_checkpoint=False)  # name and checkpoint presence, at DAG build
check_text_prompts(  # text prompts (config or sheet) only for a teacher with a text head, at DAG build
    SETTINGS.teacher,
    SETTINGS.evaluation.text_prompts,
    dict(SCENES["text_prompts"]),
    config["scenes"],
)


wildcard_constraints:
    dataset=r"[A-Za-z0-9_\-]+",
    scene=r"[A-Za-z0-9_\-]+",
    variant="|".join(ALL_VARIANTS),
    teacher=r"[A-Za-z0-9_\-]+",


def scene_row(wildcards):
    return SCENES.loc[f"{wildcards.dataset}/{wildcards.scene}"]


def get_scene_source(wildcards):
    """The captured scene's folder, or the demo generator's output for format ``demo``."""
    row = scene_row(wildcards)
    if row["format"] == "demo":
        return expand(
            rules.make_demo_scene.output.marker,
            dataset=wildcards.dataset,
            scene=wildcards.scene,
        )[0]
    return row["path"]


def get_text_prompts(wildcards):
    """The scene's text prompts (params of evaluate_segmentation): the sheet's ``text_prompts`` column,
    else ``evaluation.text_prompts`` (:func:`san.pipeline.settings.scene_text_prompts`)."""
    return scene_text_prompts(SCENES, f"{wildcards.dataset}/{wildcards.scene}", SETTINGS.evaluation.text_prompts)


def get_scene_ids():
    return list(SCENES.index)


def _per_scene(output, where=None, **wildcards):
    """``expand(output, ...)`` over every scene of the sheet (``where(scene_id)`` true, when given) and
    the given wildcard values."""
    ids = [sid.split("/") for sid in get_scene_ids() if where is None or where(sid)]
    return [path for dataset, scene in ids for path in expand(output, dataset=dataset, scene=scene, **wildcards)]


def get_final_outputs():
    outputs = _per_scene(rules.extract_mesh.output.summary)
    outputs += get_all_evaluations()
    outputs += get_all_benchmarks()
    outputs.extend(rules.make_tables.output)
    outputs.extend(rules.plot_figures.output)
    outputs.extend(rules.make_cost_table.output)
    return outputs


def get_all_evaluations(wildcards=None):
    return _per_scene(rules.evaluate_segmentation.output.metrics, variant=VARIANTS)


def get_all_qualitative(wildcards=None):
    return _per_scene(rules.evaluate_segmentation.output.figure, variant=VARIANTS)


def get_all_training_curves(wildcards=None):
    return _per_scene(rules.train_nerf.output.curve) + _per_scene(rules.train_imitation.output.curve, variant=VARIANTS)


def get_mesh_for_variant(wildcards):
    """The mesh-surface variant also needs the extracted mesh."""
    if wildcards.variant == "mesh":
        return expand(
            rules.extract_mesh.output.normalized,
            dataset=wildcards.dataset,
            scene=wildcards.scene,
        )
    return []


def settings_of(*sections):
    """The parsed config sections a stage reads, as sorted ``section.key=value`` pairs
    (:func:`san.utils.formatting.flat_settings`). Given as ``params``, it lets Snakemake rerun the
    stage (and what follows) when one of its settings changes, and the report shows it as typed.
    """
    import dataclasses

    from san.utils.formatting import flat_settings

    values = {}
    for name in sections:
        value = getattr(SETTINGS, name)
        values[name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return flat_settings(values)


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
        return expand(
            rules.make_demo_scene.output.folder,
            dataset=wildcards.dataset,
            scene=wildcards.scene,
        )[0]
    return None


def get_segmentation_targets(wildcards=None):
    """``segmentation/full/summary.json`` of every scene listed in ``segment.prompts``."""
    if not SETTINGS.segment.prompts:
        raise ValueError("config segment.prompts is not set: point it to a TSV with columns scene, view, x, y, label")
    scenes = prompt_scene_ids(SETTINGS.segment.prompts, SCENES, config["scenes"])
    return [
        path
        for s in scenes
        for path in expand(
            rules.segment_prompts.output.summary,
            dataset=s.split("/")[0],
            scene=s.split("/")[1],
            variant="full",
        )
    ]


def get_teacher_checkpoint(wildcards):
    """The teacher's weights file, so that a missing checkpoint is reported before any job runs."""
    return [SETTINGS.teacher.checkpoint] if SETTINGS.teacher.checkpoint else []


def _per_job(path_of):
    """``path_of(rule)`` (a rule's benchmark or log pattern) for every per-scene job of the default DAG."""
    files = []
    for stage in (rules.prepare_poses, rules.train_nerf, rules.extract_mesh, rules.time_teacher):
        files += _per_scene(path_of(stage))
    files += _per_scene(path_of(rules.cache_features), teacher=SETTINGS.teacher.name)
    for stage in (rules.train_imitation, rules.evaluate_segmentation):
        files += _per_scene(path_of(stage), variant=VARIANTS)
    files += _per_scene(path_of(rules.make_demo_scene), where=is_demo_scene)
    files += _per_scene(path_of(rules.render_benchmark_views), where=has_benchmark)
    files += _per_scene(path_of(rules.evaluate_benchmark), where=has_benchmark, variant=VARIANTS)
    if SETTINGS.benchmark.teacher_baseline:
        files += _per_scene(path_of(rules.evaluate_benchmark_teacher), where=has_benchmark)
    return files


def get_all_job_benchmarks(wildcards=None):
    """The benchmark files of every per-scene job of the default DAG (for the cost table)."""
    return _per_job(lambda stage: stage.benchmark)


def get_all_job_logs(wildcards=None):
    """The log files of the jobs of get_all_job_benchmarks, in the same order (their last line holds
    each job's exact CPU seconds and peak RSS, san.pipeline.adapter.resources_line)."""
    return _per_job(lambda stage: stage.log[0])


def is_demo_scene(scene_id):
    """Whether the scene is made by rule make_demo_scene."""
    return SCENES.loc[scene_id, "format"] == "demo"


def has_benchmark(scene_id):
    """Whether a scene has a ground-truth layout: demo scenes always, others by sheet column ``benchmark``."""
    row = SCENES.loc[scene_id]
    return row["format"] == "demo" or bool(row["benchmark"])


def get_benchmark_layout(wildcards):
    """The scene's ground-truth layout folder (san.data.gt_layout)."""
    row = scene_row(wildcards)
    if row["format"] == "demo":
        return expand(rules.make_demo_scene.output.benchmark, dataset=wildcards.dataset, scene=wildcards.scene)[0]
    if not row["benchmark"]:
        raise ValueError(
            f"scene {wildcards.dataset}/{wildcards.scene}: no ground-truth layout (scene sheet column 'benchmark' is empty)"
        )
    return row["benchmark"]


def get_all_benchmarks(wildcards=None):
    """``benchmark/{variant}/metrics.json`` of every scene with a ground-truth layout."""
    return _per_scene(rules.evaluate_benchmark.output.metrics, where=has_benchmark, variant=VARIANTS)


def get_all_teacher_benchmarks(wildcards=None):
    """``benchmark/teacher_on_rgb/metrics.json`` of every scene with a ground-truth layout (none
    without ``benchmark.teacher_baseline``)."""
    if not SETTINGS.benchmark.teacher_baseline:
        return []
    return _per_scene(rules.evaluate_benchmark_teacher.output.metrics, where=has_benchmark)


def get_teacher_baseline(wildcards):
    """The scene's teacher-on-RGB baseline files for rule evaluate_benchmark, by name (none without
    ``benchmark.teacher_baseline``)."""
    if not SETTINGS.benchmark.teacher_baseline:
        return {}
    out = rules.evaluate_benchmark_teacher.output
    return {
        f"teacher_{key}": expand(getattr(out, key), dataset=wildcards.dataset, scene=wildcards.scene)[0]
        for key in ("metrics", "views", "masks")
    }


def textured_mesh_outputs():
    """Textured scene-mesh files of rule extract_mesh (``mesh.texture``; none when it is off)."""
    if not SETTINGS.mesh.texture:
        return {}
    folder = f"{RESULTS}/{{dataset}}/{{scene}}/mesh"
    return {
        "textured_glb": f"{folder}/mesh_textured.glb",
        "textured_obj": f"{folder}/mesh_textured.obj",
        "textured_mtl": f"{folder}/mesh_textured.mtl",
        "textured_png": f"{folder}/mesh_textured.png",
        "atlas": f"{folder}/mesh_atlas.npz",
    }
