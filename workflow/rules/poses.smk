rule prepare_poses:
    """Load COLMAP / LLFF / transforms.json poses, validate every image, normalise, split."""
    input:
        source=get_scene_source,
    output:
        cameras=f"{RESULTS}/{{dataset}}/{{scene}}/poses/cameras.json",
    log:
        f"{RESULTS}/logs/prepare_poses/{{dataset}}/{{scene}}.log",
    resources:
        **resources_for("prepare_poses"),
    params:
        settings=settings_of("poses"),
        row=lambda wildcards: scene_row(wildcards).to_dict(),
    script:
        "../scripts/prepare_poses.py"
