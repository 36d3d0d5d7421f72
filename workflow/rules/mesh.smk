rule extract_mesh:
    """Marching cubes on the density, cleaned, decimated, coloured; PLY + GLB in the input frame."""
    input:
        model=rules.train_nerf.output.model,
        cameras=rules.prepare_poses.output.cameras,
    output:
        ply=f"{RESULTS}/{{dataset}}/{{scene}}/mesh/mesh.ply",
        glb=f"{RESULTS}/{{dataset}}/{{scene}}/mesh/mesh.glb",
        normalized=f"{RESULTS}/{{dataset}}/{{scene}}/mesh/mesh_normalized.ply",
        summary=f"{RESULTS}/{{dataset}}/{{scene}}/mesh/mesh.json",
    log:
        f"{RESULTS}/logs/extract_mesh/{{dataset}}/{{scene}}.log",
    priority: 30  # the mesh variant waits for it
    threads: SETTINGS.resources.for_stage("extract_mesh").cpus
    resources:
        **resources_for("extract_mesh"),
    params:
        settings=settings_of("mesh"),
        ground_truth=lambda wildcards: get_ground_truth(wildcards),
    script:
        "../scripts/extract_mesh.py"
