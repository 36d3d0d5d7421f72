REPORT = f"{RESULTS}/report"
TABLE_CAPTIONS = {
    "table1_timing": "table1_timing.rst",
    "table2_ablation": "table2_ablation.rst",
    "iou_per_scene": "iou_per_scene_table.rst",
    "benchmark_per_task": "benchmark_per_task.rst",
}


rule make_tables:
    """Table 1 (timing), Table 2 (ablations), IoU per scene and the ground-truth benchmark per task
    as CSV, Markdown and LaTeX."""
    input:
        metrics=get_all_evaluations,
        benchmark=get_all_benchmarks,
        teacher_benchmark=get_all_teacher_benchmarks,
    output:
        **{
            f"{name}_{ext}": report(
                f"{REPORT}/{name}.{ext}",
                caption=f"../report/{TABLE_CAPTIONS[name]}",
                category="Tables",
                labels={"table": name, "format": ext},
            )
            for name in ("table1_timing", "table2_ablation", "iou_per_scene", "benchmark_per_task")
            for ext in ("csv", "md", "tex")
        },
    log:
        f"{RESULTS}/logs/make_tables.log",
    benchmark:
        f"{RESULTS}/benchmarks/make_tables.tsv"
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
        benchmark=get_all_benchmarks,
    output:
        iou=report(
            f"{REPORT}/iou_per_scene.png",
            caption="../report/iou_per_scene.rst",
            category="Figures",
            labels={"figure": "IoU per scene"},
        ),
        timing=report(
            f"{REPORT}/timing_breakdown.png",
            caption="../report/timing_breakdown.rst",
            category="Figures",
            labels={"figure": "timing breakdown"},
        ),
        qualitative=report(
            f"{REPORT}/qualitative_grid.png",
            caption="../report/qualitative_grid.rst",
            category="Figures",
            labels={"figure": "qualitative grid"},
        ),
        curves=report(
            f"{REPORT}/training_curves.png",
            caption="../report/training_curves.rst",
            category="Figures",
            labels={"figure": "training curves"},
        ),
    log:
        f"{RESULTS}/logs/plot_figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/plot_figures.tsv"
    resources:
        **resources_for("report"),
    params:
        settings=settings_of("report"),
    script:
        "../scripts/plot_figures.py"


rule make_cost_table:
    """Wall / CPU seconds and peak memory per scene and stage, from every job's benchmark file."""
    input:
        benchmarks=get_all_job_benchmarks,
    output:
        csv=report(
            f"{REPORT}/cost_per_stage.csv",
            caption="../report/cost_per_stage.rst",
            category="Cost",
            labels={"table": "cost per stage", "format": "csv"},
        ),
        md=report(
            f"{REPORT}/cost_per_stage.md",
            caption="../report/cost_per_stage.rst",
            category="Cost",
            labels={"table": "cost per stage", "format": "md"},
        ),
        tex=report(
            f"{REPORT}/cost_per_stage.tex",
            caption="../report/cost_per_stage.rst",
            category="Cost",
            labels={"table": "cost per stage", "format": "tex"},
        ),
        figure=report(
            f"{REPORT}/cost_per_stage.png",
            caption="../report/cost_per_stage.rst",
            category="Cost",
            labels={"figure": "cost per stage"},
        ),
    log:
        f"{RESULTS}/logs/make_cost_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/make_cost_table.tsv"
    resources:
        **resources_for("report"),
    params:
        settings=settings_of("report"),
        logs=get_all_job_logs,
    script:
        "../scripts/make_cost_table.py"
