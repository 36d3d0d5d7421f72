rule make_demo_scene:
    """The embedded demo scene: procedurally built and ray-cast exactly, with ground-truth depth,
    object-id masks and meshes, written as a COLMAP text model plus PNGs."""
    output:
        folder=directory(f"{RESULTS}/{{dataset}}/{{scene}}/scene"),
        marker=f"{RESULTS}/{{dataset}}/{{scene}}/scene.done",
    log:
        f"{RESULTS}/logs/make_demo_scene/{{dataset}}/{{scene}}.log",
    resources:
        **resources_for("make_demo_scene"),
    params:
        settings=settings_of("demo_scene"),
    script:
        "../scripts/make_demo_scene.py"
