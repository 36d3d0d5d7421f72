# Segmentation against ground-truth masks (NVOS / SPIn-NeRF style protocol; README "Benchmark").
# Runs for every scene with a ground-truth layout: demo scenes (written by make_demo_scene) and
# scenes whose sheet row names a folder in column `benchmark`.


rule render_benchmark_views:
    """The NeRF renderings (RGB, depth) of every camera the benchmark visits, once per scene: every
    variant's evaluate_benchmark starts from them (they do not depend on the variant)."""
    input:
        layout=get_benchmark_layout,
        cameras=rules.prepare_poses.output.cameras,
        model=rules.train_nerf.output.model,
    output:
        renders=temp(f"{RESULTS}/{{dataset}}/{{scene}}/benchmark/renders.pt"),
    log:
        f"{RESULTS}/logs/render_benchmark_views/{{dataset}}/{{scene}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/render_benchmark_views/{{dataset}}/{{scene}}.tsv"
    priority: 22  # before the imitations: the short evaluation jobs then fill both cores at the end
    threads: SETTINGS.resources.for_stage("render_benchmark_views").cpus
    resources:
        **resources_for("render_benchmark_views"),
    params:
        settings=settings_of("benchmark"),
    script:
        "../scripts/render_benchmark_views.py"


rule evaluate_benchmark_teacher:
    """The teacher on the NeRF's RGB renderings, same protocol: the baseline beside every variant's
    imitation figures. It depends on the scene's NeRF and teacher only, so it runs once per scene.
    """
    input:
        layout=get_benchmark_layout,
        cameras=rules.prepare_poses.output.cameras,
        model=rules.train_nerf.output.model,
        renders=rules.render_benchmark_views.output.renders,
        checkpoint=get_teacher_checkpoint,
    output:
        metrics=f"{RESULTS}/{{dataset}}/{{scene}}/benchmark/teacher_on_rgb/metrics.json",
        views=f"{RESULTS}/{{dataset}}/{{scene}}/benchmark/teacher_on_rgb/views.csv",
        masks=f"{RESULTS}/{{dataset}}/{{scene}}/benchmark/teacher_on_rgb/masks.npz",
    log:
        f"{RESULTS}/logs/evaluate_benchmark_teacher/{{dataset}}/{{scene}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_benchmark_teacher/{{dataset}}/{{scene}}.tsv"
    threads: SETTINGS.resources.for_stage("evaluate_benchmark_teacher").cpus
    resources:
        **resources_for("evaluate_benchmark_teacher"),
    params:
        settings=settings_of("benchmark", "teacher"),
    script:
        "../scripts/evaluate_benchmark_teacher.py"


rule evaluate_benchmark:
    """Prompt in the reference view, track into every target view; IoU / accuracy vs ground truth
    for imitated features, beside the scene's teacher-on-RGB baseline; mesh segmentation vs GT meshes.
    """
    input:
        unpack(get_teacher_baseline),
        layout=get_benchmark_layout,
        cameras=rules.prepare_poses.output.cameras,
        model=rules.train_nerf.output.model,
        field=rules.train_imitation.output.field,
        mesh=rules.extract_mesh.output.normalized,
        renders=rules.render_benchmark_views.output.renders,
        checkpoint=get_teacher_checkpoint,
    output:
        metrics=f"{RESULTS}/{{dataset}}/{{scene}}/benchmark/{{variant}}/metrics.json",
        views=f"{RESULTS}/{{dataset}}/{{scene}}/benchmark/{{variant}}/views.csv",
        figure=report(
            f"{RESULTS}/{{dataset}}/{{scene}}/benchmark/{{variant}}/qualitative.png",
            caption="../report/benchmark_qualitative.rst",
            category="Benchmark",
            subcategory="{dataset}/{scene}",
            labels={"scene": "{dataset}/{scene}", "variant": "{variant}"},
        ),
    log:
        f"{RESULTS}/logs/evaluate_benchmark/{{dataset}}/{{scene}}/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_benchmark/{{dataset}}/{{scene}}/{{variant}}.tsv"
    threads: SETTINGS.resources.for_stage("evaluate_benchmark").cpus
    resources:
        **resources_for("evaluate_benchmark"),
    params:
        settings=settings_of("benchmark", "teacher"),
    script:
        "../scripts/evaluate_benchmark.py"
