rule time_teacher:
    """Table 1's variant-independent steps, once per scene: teacher encoding and decoding of the first
    held-out view as captured (no NeRF needed: it runs beside NeRF training)."""
    input:
        cameras=rules.prepare_poses.output.cameras,
    output:
        timing=f"{RESULTS}/{{dataset}}/{{scene}}/evaluation/teacher_timing.json",
    log:
        f"{RESULTS}/logs/time_teacher/{{dataset}}/{{scene}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/time_teacher/{{dataset}}/{{scene}}.tsv"
    priority: 40  # the longest single job: start it at once, beside train_nerf
    threads: SETTINGS.resources.for_stage("time_teacher").cpus
    resources:
        **resources_for("time_teacher"),
    params:
        settings=settings_of("evaluation", "teacher"),
    script:
        "../scripts/time_teacher.py"


rule evaluate_segmentation:
    """Held-out views: teacher masks vs imitation masks for a 5x5 click grid and the scene's text
    prompts (sheet column text_prompts, else evaluation.text_prompts); timings (Table 1)."""
    input:
        model=rules.train_nerf.output.model,
        cameras=rules.prepare_poses.output.cameras,
        field=rules.train_imitation.output.field,
        stats=rules.train_imitation.output.stats,
        mesh=rules.extract_mesh.output.normalized,
        timing=rules.time_teacher.output.timing,
    output:
        metrics=f"{RESULTS}/{{dataset}}/{{scene}}/evaluation/{{variant}}/metrics.json",
        clicks=f"{RESULTS}/{{dataset}}/{{scene}}/evaluation/{{variant}}/clicks.csv",
        figure=report(
            f"{RESULTS}/{{dataset}}/{{scene}}/evaluation/{{variant}}/qualitative.png",
            caption="../report/qualitative.rst",
            category="Qualitative",
            subcategory="{dataset}/{scene}",
            labels={"scene": "{dataset}/{scene}", "variant": "{variant}"},
        ),
    log:
        f"{RESULTS}/logs/evaluate_segmentation/{{dataset}}/{{scene}}/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_segmentation/{{dataset}}/{{scene}}/{{variant}}.tsv"
    threads: SETTINGS.resources.for_stage("evaluate_segmentation").cpus
    resources:
        **resources_for("evaluate_segmentation"),
    params:
        settings=settings_of("evaluation", "teacher"),
        text_prompts=get_text_prompts,
    script:
        "../scripts/evaluate_segmentation.py"
