rule train_nerf:
    """Hash-grid NeRF; checkpoints in nerf/checkpoints/ make a killed job resume."""
    input:
        cameras=rules.prepare_poses.output.cameras,
    output:
        model=f"{RESULTS}/{{dataset}}/{{scene}}/nerf/model.pt",
        metrics=f"{RESULTS}/{{dataset}}/{{scene}}/nerf/metrics.json",
        curve=f"{RESULTS}/{{dataset}}/{{scene}}/nerf/training_curve.csv",
    log:
        f"{RESULTS}/logs/train_nerf/{{dataset}}/{{scene}}.log",
    threads: SETTINGS.resources.for_stage("train_nerf").cpus
    resources:
        **resources_for("train_nerf"),
    params:
        settings=settings_of("nerf", "seed"),
    script:
        "../scripts/train_nerf.py"
