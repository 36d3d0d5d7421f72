REPORT = f"{RESULTS}/report"


rule make_tables:
    """Table 1 (timing), Table 2 (ablations) and IoU per scene as CSV, Markdown and LaTeX."""
    input:
        metrics=get_all_evaluations,
    output:
        **{
            f"{name}_{ext}": report(
                f"{REPORT}/{name}.{ext}",
                category="Tables",
                labels={"table": name, "format": ext},
            )
            for name in ("table1_timing", "table2_ablation", "iou_per_scene")
            for ext in ("csv", "md", "tex")
        },
    log:
        f"{RESULTS}/logs/make_tables.log",
    resources:
        **resources_for("report"),
    params:
        settings=settings_of("report"),
    script:
        "../scripts/make_tables.py"


rule plot_figures:
    """Per-scene IoU bars, timing breakdown, a qualitative grid and the training curves."""
    input:
        metrics=get_all_evaluations,
        curves=get_all_training_curves,
        qualitative=get_all_qualitative,
    output:
        iou=report(f"{REPORT}/iou_per_scene.png", category="Figures", labels={"figure": "IoU per scene"}),
        timing=report(f"{REPORT}/timing_breakdown.png", category="Figures", labels={"figure": "timing breakdown"}),
        qualitative=report(f"{REPORT}/qualitative_grid.png", category="Figures", labels={"figure": "qualitative grid"}),
        curves=report(f"{REPORT}/training_curves.png", category="Figures", labels={"figure": "training curves"}),
    log:
        f"{RESULTS}/logs/plot_figures.log",
    resources:
        **resources_for("report"),
    params:
        settings=settings_of("report"),
    script:
        "../scripts/plot_figures.py"
