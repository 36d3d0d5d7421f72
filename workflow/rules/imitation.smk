rule train_imitation:
    """Semantic feature field imitating the teacher's embedding; one run per ablation variant."""
    input:
        model=rules.train_nerf.output.model,
        cameras=rules.prepare_poses.output.cameras,
        cache=f"{RESULTS}/{{dataset}}/{{scene}}/features/{TEACHER}.h5",
        mesh=get_mesh_for_variant,
    output:
        field=f"{RESULTS}/{{dataset}}/{{scene}}/imitation/{{variant}}/field.pt",
        curve=f"{RESULTS}/{{dataset}}/{{scene}}/imitation/{{variant}}/training_curve.csv",
        stats=f"{RESULTS}/{{dataset}}/{{scene}}/imitation/{{variant}}/train_stats.json",
    log:
        f"{RESULTS}/logs/train_imitation/{{dataset}}/{{scene}}/{{variant}}.log",
    priority: 20  # the longest jobs of a scene start first
    threads: SETTINGS.resources.for_stage("train_imitation").cpus
    resources:
        **resources_for("train_imitation"),
    params:
        settings=settings_of("imitation", "teacher", "seed"),
    script:
        "../scripts/train_imitation.py"
