"""Evaluation of feature imitation: the click-grid IoU protocol (:mod:`.protocol`) and the
inference timings of Table 1 (:mod:`.timing`)."""

from san.evaluation.protocol import (
    EvaluationConfig,
    EvalView,
    ViewResult,
    click_grid,
    evaluate_views,
    evaluation_views,
    feature_agreement,
    mask_iou,
    summarize,
    teacher_shift_ceiling,
)
from san.evaluation.timing import pipeline_fps, time_fn, time_steps

__all__ = [
    "EvalView",
    "EvaluationConfig",
    "ViewResult",
    "click_grid",
    "evaluate_views",
    "evaluation_views",
    "feature_agreement",
    "mask_iou",
    "pipeline_fps",
    "summarize",
    "teacher_shift_ceiling",
    "time_fn",
    "time_steps",
]
