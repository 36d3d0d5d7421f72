# san: interactive Segment-Anything NeRF with feature imitation.
#
#   snakemake --cores 2                                  # the demo scene, end to end (config/config.yaml)
#   snakemake --cores 8 --configfile config/paper.yaml   # the paper's 15 scenes (set data_root)
#   snakemake --profile slurm --configfile config/paper.yaml
#
# Stages, one .smk each: make_demo_scene -> prepare_poses -> train_nerf -> extract_mesh ->
# cache_features -> train_imitation -> evaluate_segmentation, evaluate_benchmark -> report.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/poses.smk"
include: "workflow/rules/nerf.smk"
include: "workflow/rules/mesh.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/imitation.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/benchmark.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/segment.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
