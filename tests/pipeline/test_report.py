"""The report on two fake scenes' metrics: tables with the right rows and columns, the untrained
label, and the four figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from san.pipeline.report import curve_label, make_tables, plot_figures, table_outputs
from san.report import ReportConfig
from san.report.tables import ReportError, load_metrics
from tests.pipeline.conftest import fake_metrics, figure_files


def test_tables_rows_columns_and_untrained_label(fake_results, tmp_path):
    metrics, _ = fake_results
    out = tmp_path / "results" / "report"
    written = make_tables(metrics, table_outputs(out))
    for name in ("table1_timing", "table2_ablation", "iou_per_scene"):
        assert [p.name for p in written[name]] == [f"{name}.csv", f"{name}.md", f"{name}.tex"]
        assert all(p.is_file() for p in written[name])

    t1 = pd.read_csv(out / "table1_timing.csv")
    assert len(t1) == 1
    assert list(t1.columns[:4]) == ["timing_teacher", "untrained", "device", "scenes"]
    assert {
        "rgb_render_ms",
        "teacher_encode_ms",
        "imitation_encode_volume_ms",
        "imitation_encode_mesh_ms",
        "decode_ms",
        "fps_original",
        "fps_imitation",
        "encode_speedup",
    } <= set(t1.columns)
    assert t1.loc[0, "untrained"] == "yes" and t1.loc[0, "scenes"] == 2
    assert t1.loc[0, "encode_speedup"] == pytest.approx(6000.0)
    assert t1.loc[0, "imitation_encode_mesh_ms"] == 4.0  # from the mesh variant
    assert t1.loc[0, "fps_imitation"] == pytest.approx(1000 / 60)  # from the full variant
    assert t1.loc[0, "fps_imitation_mesh"] == pytest.approx(1000 / 54)

    t2 = pd.read_csv(out / "table2_ablation.csv")
    assert list(t2["variant"]) == ["full", "no_aug", "mesh"]
    assert list(t2["scenes"]) == [2, 2, 1]
    assert list(t2.columns) == [
        "variant",
        "change",
        "teacher",
        "untrained",
        "scenes",
        "feature_mse",
        "feature_cosine",
        "mask_iou",
        "iou_ceiling",
        "iou_vs_gt",
        "accuracy_vs_gt",
        "teacher_iou_vs_gt",
        "train_minutes",
    ]
    assert t2["iou_vs_gt"].isna().all()  # no benchmark metrics given: no ground-truth figures
    # demo: full 0.75, no_aug 0.80, mesh 0.85; fern: full 0.90, no_aug 0.95.
    assert t2["mask_iou"].tolist() == pytest.approx([0.825, 0.875, 0.85])

    t3 = pd.read_csv(out / "iou_per_scene.csv")
    assert list(t3.columns) == [
        "dataset",
        "scene",
        "teacher",
        "untrained",
        "iou_ceiling",
        "iou_full",
        "iou_no_aug",
        "iou_mesh",
    ]
    assert list(zip(t3["dataset"], t3["scene"])) == [
        ("demo", "demo"),
        ("demo", "mean"),
        ("llff", "fern"),
        ("llff", "mean"),
        ("all", "mean"),
    ]
    assert t3.loc[4, "iou_full"] == pytest.approx(0.825)
    assert np.isnan(t3.loc[2, "iou_mesh"]) and t3.loc[4, "iou_mesh"] == pytest.approx(0.85)

    for name in ("table1_timing", "table2_ablation", "iou_per_scene"):
        md = (out / f"{name}.md").read_text()
        assert "| untrained" in md and "UNTRAINED" in md.splitlines()[0]
        tex = (out / f"{name}.tex").read_text()
        assert r"\caption{" in tex and r"sam\_untrained\_tiny" in tex and "UNTRAINED" in tex


def test_figures_exist(fake_results, tmp_path):
    metrics, curves = fake_results
    out = tmp_path / "figs"
    panels = [m.with_name("qualitative.png") for m in reversed(metrics)]  # matched by folder, any order
    paths = plot_figures(metrics, curves, *figure_files(out), panels, ReportConfig(dpi=40))
    assert [p.name for p in paths] == ["iou.png", "timing.png", "qual.png", "curves.png"]
    for p in paths:
        assert p.is_file() and p.stat().st_size > 1000


def test_curve_labels():
    assert curve_label("results/llff/fern/nerf/training_curve.csv") == ("nerf", "llff/fern")
    assert curve_label("results/llff/fern/imitation/no_aug/training_curve.csv") == ("imitation", "llff/fern [no_aug]")
    with pytest.raises(ValueError):
        curve_label("results/llff/fern/other.csv")


def test_bad_metrics_name_the_file(tmp_path):
    bad = tmp_path / "metrics.json"
    bad.write_text(json.dumps({"dataset": "x"}))
    with pytest.raises(ReportError, match="metrics.json: missing key"):
        load_metrics([bad])


def test_table2_text_iou_column_only_when_measured(tmp_path):
    from san.report.tables import table2_ablation

    paths = []
    for variant, text_iou in (("full", 0.8), ("no_corr", 0.6)):
        m = dict(fake_metrics("demo", "demo", variant, 0.7), teacher="sam3_untrained_small", text_iou=text_iou)
        p = tmp_path / f"{variant}.json"
        p.write_text(json.dumps(m))
        paths.append(p)
    table, caption = table2_ablation(load_metrics(paths))
    assert list(table["text_iou"]) == [0.8, 0.6] and "text prompts" in caption
    assert table.columns.get_loc("text_iou") == table.columns.get_loc("iou_ceiling") + 1
    plain, _ = table2_ablation(load_metrics([tmp_path / "full.json"]).drop(columns="text_iou"))
    assert "text_iou" not in plain.columns
    without = load_metrics([tmp_path / "full.json"]).assign(text_iou=float("nan"))
    assert "text_iou" not in table2_ablation(without)[0].columns
