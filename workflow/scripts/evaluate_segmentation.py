"""Adapter for rule evaluate_segmentation -> san.pipeline.evaluate_segmentation.evaluate_segmentation."""

from san.pipeline.adapter import run_rule
from san.pipeline.evaluate_segmentation import evaluate_segmentation


def main(settings):
    i, o, w = snakemake.input, snakemake.output, snakemake.wildcards
    evaluate_segmentation(
        i.model,
        i.cameras,
        i.field,
        metrics_json=o.metrics,
        clicks_csv=o.clicks,
        figure_png=o.figure,
        dataset=w.dataset,
        scene=w.scene,
        variant=w.variant,
        teacher_config=settings.teacher,
        config=settings.evaluation,
        stats_json=i.stats,
        mesh_path=i.mesh,
        device=settings.device,
        teacher_timing_json=i.timing,
        text_prompts=snakemake.params.text_prompts,  # the scene's list (sheet column text_prompts) or the config's
    )


run_rule(snakemake, main)
