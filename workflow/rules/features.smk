rule cache_features:
    """Render training + augmented views with the NeRF, encode them with the teacher, write HDF5."""
    input:
        model=rules.train_nerf.output.model,
        cameras=rules.prepare_poses.output.cameras,
        checkpoint=get_teacher_checkpoint,
    output:
        cache=f"{RESULTS}/{{dataset}}/{{scene}}/features/{{teacher}}.h5",
    log:
        f"{RESULTS}/logs/cache_features/{{dataset}}/{{scene}}/{{teacher}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/cache_features/{{dataset}}/{{scene}}/{{teacher}}.tsv"
    priority: 25  # every imitation variant waits for it
    threads: SETTINGS.resources.for_stage("cache_features").cpus
    resources:
        **resources_for("cache_features"),
    params:
        settings=settings_of("features", "teacher"),
    script:
        "../scripts/cache_features.py"
