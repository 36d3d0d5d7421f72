"""Adapter for rule evaluate_benchmark -> san.pipeline.evaluate_benchmark.evaluate_benchmark."""

from san.pipeline.adapter import run_rule
from san.pipeline.evaluate_benchmark import evaluate_benchmark


def main(settings):
    i, o, w = snakemake.input, snakemake.output, snakemake.wildcards
    evaluate_benchmark(
        cameras=i.cameras,
        model=i.model,
        field=i.field,
        mesh=i.mesh,
        layout_dir=i.layout,
        metrics_json=o.metrics,
        views_csv=o.views,
        figure_png=o.figure,
        dataset=w.dataset,
        scene=w.scene,
        variant=w.variant,
        teacher_config=settings.teacher,
        config=settings.benchmark,
        device=settings.device,
        **{key: getattr(i, key, None) for key in ("teacher_metrics", "teacher_views", "teacher_masks")},
        renders=i.renders,
    )


run_rule(snakemake, main)
