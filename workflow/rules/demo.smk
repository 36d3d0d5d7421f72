rule make_demo_scene:
    """The embedded demo scene: procedurally built and ray-cast exactly, with ground-truth depth,
    object-id masks and meshes, written as a COLMAP text model plus PNGs; and its ground-truth
    benchmark (one task per object, san.data.gt_layout)."""
    output:
        folder=directory(f"{RESULTS}/{{dataset}}/{{scene}}/scene"),
        benchmark=directory(f"{RESULTS}/{{dataset}}/{{scene}}/benchmark_gt"),
        marker=f"{RESULTS}/{{dataset}}/{{scene}}/scene.done",
    log:
        f"{RESULTS}/logs/make_demo_scene/{{dataset}}/{{scene}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/make_demo_scene/{{dataset}}/{{scene}}.tsv"
    resources:
        **resources_for("make_demo_scene"),
    params:
        settings=settings_of("demo_scene", "poses"),
    script:
        "../scripts/make_demo_scene.py"
