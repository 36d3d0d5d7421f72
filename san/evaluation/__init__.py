"""Evaluation of feature imitation: the click-grid IoU protocol (:mod:`.protocol`), the
inference timings of Table 1 (:mod:`.timing`) and the 3D-consistency ceiling of a teacher's maps
on a scene with exact depth (:mod:`.consistency`)."""

import lazy_loader

from san.evaluation.config import EvaluationConfig

# Submodules load on first use of a name (PEP 562), so that importing this package, or its light
# ``config`` module, does not import torch (every Snakemake parse reads the config classes).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "consistency": [
            "DepthView",
            "FeatureView",
            "consensus_consistency",
            "encode_depth_view",
            "image_feature_view",
            "load_depth_views",
            "pair_consistency",
        ],
        "protocol": [
            "EvalView",
            "ViewResult",
            "click_grid",
            "evaluate_views",
            "evaluation_views",
            "feature_agreement",
            "mask_iou",
            "summarize",
            "teacher_shift_ceiling",
        ],
        "timing": ["pipeline_fps", "time_fn", "time_steps"],
    },
)
__all__ += ["EvaluationConfig"]
