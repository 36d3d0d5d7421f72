# Batch segmentation from a prompts TSV (config key segment.prompts; columns scene, view, x, y,
# label). Not part of the default target: ask for it, e.g.
#   snakemake --cores 2 --config segment='{prompts: config/demo_prompts.tsv}' segment_all
rule segment_prompts:
    """Masks, overlays and (optionally) the segmented mesh for every prompt of one scene."""
    input:
        prompts=lambda wildcards: SETTINGS.segment.prompts or [],
        cameras=rules.prepare_poses.output.cameras,
        model=rules.train_nerf.output.model,
        field=rules.train_imitation.output.field,
        mesh=rules.extract_mesh.output.normalized,
    output:
        summary=f"{RESULTS}/{{dataset}}/{{scene}}/segmentation/{{variant}}/summary.json",
    log:
        f"{RESULTS}/logs/segment_prompts/{{dataset}}/{{scene}}/{{variant}}.log",
    threads: SETTINGS.resources.for_stage("segment").cpus
    resources:
        **resources_for("segment"),
    params:
        settings=settings_of("segment", "teacher"),
    script:
        "../scripts/segment_prompts.py"


rule segment_all:
    """Every scene named in the prompts TSV, full variant."""
    input:
        get_segmentation_targets,
