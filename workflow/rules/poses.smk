rule prepare_poses:
    """Load COLMAP / LLFF / transforms.json poses, validate every image, normalise, split."""
    input:
        source=get_scene_source,
    output:
        cameras=f"{RESULTS}/{{dataset}}/{{scene}}/poses/cameras.json",
    log:
        f"{RESULTS}/logs/prepare_poses/{{dataset}}/{{scene}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_poses/{{dataset}}/{{scene}}.tsv"
    resources:
        **resources_for("prepare_poses"),
    params:
        settings=settings_of("poses"),
        # text_prompts is read by evaluate_segmentation only: editing it must not rerun the poses
        row=lambda wildcards: scene_row(wildcards).drop(labels=["text_prompts"]).to_dict(),
    script:
        "../scripts/prepare_poses.py"
