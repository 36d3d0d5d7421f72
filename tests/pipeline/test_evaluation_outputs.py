"""evaluate_segmentation's outputs from stand-in renderers: metrics.json, clicks.csv and the
qualitative figure, and that the report reads them back."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from san.evaluation.config import EvaluationConfig
from san.evaluation.protocol import CLICK_COLUMNS, evaluate_views
from san.evaluation.timing import IMITATION_VOLUME, measure_timing
from san.pipeline.evaluate_segmentation import build_record, write_outputs
from san.pipeline.report import make_tables, table_outputs
from san.teachers import build_teacher

REQUIRED = (
    "mask_iou",
    "feature_mse",
    "feature_cosine",
    "timing_ms",
    "fps",
    "teacher",
    "untrained",
    "timing_teacher",
    "timing_teacher_untrained",
    "variant",
    "train_minutes",
    "iou_ceiling",
)


class _View:
    index, name = 8, "img_008"


def test_outputs_round_trip(tmp_path):
    teacher = build_teacher("toy_multiscale_untrained", device="cpu")
    image = torch.rand(40, 56, 3, generator=torch.Generator().manual_seed(0))
    teacher_maps = [f[0] for f in teacher.encode(image.permute(2, 0, 1)[None])]

    def rgb(view):
        return image

    def feats(view):  # imitation = teacher features: IoU 1 by construction
        return teacher_maps

    config = EvaluationConfig(
        render_size=56, grid=2, timing_warmup=0, timing_repeats=2, timing_encode_warmup=0, timing_encode_repeats=1
    )
    results = evaluate_views(teacher, rgb, feats, [_View()], grid=2, ceiling_shift=1, keep=1)
    timing = measure_timing(_View(), rgb, feats, teacher, IMITATION_VOLUME, config, torch.device("cpu"))
    assert set(timing) == {"rgb_render", "teacher_encode", IMITATION_VOLUME, "decode"}
    assert len(timing["teacher_encode"]["all"]) == 1 and len(timing["decode"]["all"]) == 2
    record = build_record(
        "demo",
        "demo",
        "full",
        results,
        timing,
        IMITATION_VOLUME,
        teacher.info,
        teacher.info,
        config,
        device="cpu",
        train_minutes=1.5,
    )
    out = tmp_path / "demo" / "demo" / "evaluation" / "full"
    write_outputs(results, record, out / "metrics.json", out / "clicks.csv", out / "qualitative.png")

    metrics = json.loads((out / "metrics.json").read_text())
    for key in REQUIRED:
        assert key in metrics, key
    assert metrics["mask_iou"] == 1.0 and metrics["untrained"] is True and metrics["n_clicks"] == 4
    assert "without warm-up" in metrics["timing_note"]
    assert metrics["fps"]["imitation"] > 0 and set(metrics["timing_ms"]) == set(timing)
    clicks = pd.read_csv(out / "clicks.csv")
    assert list(clicks.columns) == list(CLICK_COLUMNS) and len(clicks) == 4
    assert (clicks["view"] == 8).all() and clicks["iou"].eq(1.0).all()
    assert clicks.loc[3, "x"] == pytest.approx(0.75 * 56) and clicks.loc[3, "y"] == pytest.approx(0.75 * 40)
    assert (out / "qualitative.png").stat().st_size > 1000

    written = make_tables([out / "metrics.json"], table_outputs(tmp_path / "report"))
    assert "toy_multiscale_untrained" in written["iou_per_scene"][1].read_text()
