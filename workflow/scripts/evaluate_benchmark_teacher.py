"""Adapter for rule evaluate_benchmark_teacher -> san.pipeline.evaluate_benchmark.evaluate_benchmark_teacher."""

from san.pipeline.adapter import run_rule
from san.pipeline.evaluate_benchmark import evaluate_benchmark_teacher


def main(settings):
    i, o, w = snakemake.input, snakemake.output, snakemake.wildcards
    evaluate_benchmark_teacher(
        cameras=i.cameras,
        model=i.model,
        layout_dir=i.layout,
        metrics_json=o.metrics,
        views_csv=o.views,
        masks_npz=o.masks,
        dataset=w.dataset,
        scene=w.scene,
        teacher_config=settings.teacher,
        config=settings.benchmark,
        device=settings.device,
        renders=i.renders,
    )


run_rule(snakemake, main)
