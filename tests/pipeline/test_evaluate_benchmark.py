"""evaluate_benchmark_teacher and evaluate_benchmark end to end on a small synthetic scene: a
randomly initialised NeRF and imitation field on disk, the TOY teacher, a ground-truth layout with a
mesh; every output written, consistent and readable by the report. (The figures themselves mean
nothing here: random weights.)"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import trimesh

from san.data.gt_layout import BenchmarkTask, LayoutError, write_layout
from san.evaluation.config import BenchmarkConfig
from san.pipeline.evaluate_benchmark import evaluate_benchmark, evaluate_benchmark_teacher
from san.report.tables import ReportError, benchmark_per_task, load_benchmarks
from san.teachers import TeacherConfig
from tests.pipeline.conftest import TEACHER


@pytest.fixture(scope="module")
def layout(scene_dir, tmp_path_factory):
    box = trimesh.creation.box(extents=(0.4, 0.4, 0.4))
    box.apply_translation((0.0, 0.0, 2.0))
    (scene_dir / "mesh").mkdir(exist_ok=True)
    box.export(scene_dir / "mesh" / "mesh_normalized.ply")
    m = np.zeros((15, 20), dtype=bool)  # annotation at half the 40x30 images
    m[5:10, 7:13] = True
    task = BenchmarkTask(
        "cube",
        "img_001",
        (20, 15),
        np.array([[10.5, 7.5]]),
        np.array([1]),
        None,
        ("img_000", "img_008"),
        prompt_rule="test",
    )
    return write_layout(
        tmp_path_factory.mktemp("gt") / "bench",
        [task],
        {"cube": {"img_000": m, "img_008": m, "img_001": m}},
        name="toy",
        source="test",
        meshes={"cube": box},
        surface_distance=0.05,
    )


def _stage_files(scene_dir, variant="full"):
    """The rule's declared inputs in a scene folder."""
    return {
        "cameras": scene_dir / "poses" / "cameras.json",
        "model": scene_dir / "nerf" / "model.pt",
        "field": scene_dir / "imitation" / variant / "field.pt",
        "mesh": scene_dir / "mesh" / "mesh_normalized.ply",
    }


def _evaluate(scene_dir, layout, out, names=("metrics.json", "views.csv", "qualitative.png"), **kwargs):
    """Rule evaluate_benchmark on the ``full`` variant of ``scene_dir``; outputs ``names`` (metrics,
    views, figure) in ``out``; ``kwargs`` add the baseline's files and the config, or override the rest."""
    metrics, views, figure = names
    kwargs = {"dataset": "synthetic", "scene": "toy", "teacher_config": TeacherConfig(name=TEACHER), **kwargs}
    return evaluate_benchmark(
        **_stage_files(scene_dir),
        layout_dir=layout,
        metrics_json=out / metrics,
        views_csv=out / views,
        figure_png=out / figure,
        variant="full",
        device="cpu",
        **kwargs,
    )


def _teacher_baseline(scene_dir, layout, out, config, teacher=TEACHER):
    """Rule evaluate_benchmark_teacher into ``out``; returns its files as evaluate_benchmark takes them."""
    files = {
        "teacher_metrics": out / "metrics.json",
        "teacher_views": out / "views.csv",
        "teacher_masks": out / "masks.npz",
    }
    evaluate_benchmark_teacher(
        cameras=scene_dir / "poses" / "cameras.json",
        model=scene_dir / "nerf" / "model.pt",
        layout_dir=layout,
        metrics_json=files["teacher_metrics"],
        views_csv=files["teacher_views"],
        masks_npz=files["teacher_masks"],
        dataset="synthetic",
        scene="toy",
        teacher_config=TeacherConfig(name=teacher),
        config=config,
        device="cpu",
    )
    return files


def test_outputs(scene_dir, layout, tmp_path):
    out = tmp_path / "benchmark" / "full"
    config = BenchmarkConfig(mesh_views=3, surface_samples=500)
    baseline = _teacher_baseline(scene_dir, layout, tmp_path / "benchmark" / "teacher_on_rgb", config)
    teacher_record = json.loads(baseline["teacher_metrics"].read_text())
    assert teacher_record["teacher"] == TEACHER and set(np.load(baseline["teacher_masks"]).files) == {
        "cube/img_001",
        "cube/img_000",
        "cube/img_008",
    }
    record = _evaluate(scene_dir, layout, out, **baseline, config=config)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["teacher"] == TEACHER and saved["untrained"] is True
    views = pd.read_csv(out / "views.csv")
    assert len(views) == 2 * 3  # two sources x (reference + 2 targets)
    assert set(views["source"]) == {"imitation", "teacher"}
    assert views.loc[views["role"] == "target", "held_out"].all()  # img_000 and img_008 are test frames
    assert not views.loc[views["role"] == "reference", "held_out"].any()
    t = saved["imitation"]["tasks"]["cube"]
    assert 0.0 <= t["iou_per_image_mean"] <= 1.0 and 0.0 <= t["iou_pooled"] <= 1.0 and t["n_views"] == 2
    assert saved["iou_vs_gt"] == pytest.approx(saved["imitation"]["miou"]) and saved["teacher_iou_vs_gt"] is not None
    tgt = views[(views["source"] == "imitation") & (views["role"] == "target")]
    assert t["iou_per_image_mean"] == pytest.approx(tgt["iou"].mean())
    union = (tgt["tp"] + tgt["fp"] + tgt["fn"]).sum()
    assert t["iou_pooled"] == pytest.approx(tgt["tp"].sum() / union if union else 1.0)
    assert (tgt["tp"] + tgt["fp"] + tgt["fn"] + tgt["tn"] == 15 * 20).all()  # scored at the annotation resolution
    assert saved["mesh_segmentation"]["tasks"]["cube"]["views"] and 0.0 <= saved["mesh_surface_iou"] <= 1.0
    assert (out / "qualitative.png").stat().st_size > 1000
    assert record["held_out"]["targets"] == 2 and record["held_out"]["targets_held_out"] == 2
    per_task, _ = benchmark_per_task([out / "metrics.json"])
    assert list(per_task["task"]) == ["cube", "mean"] and per_task.loc[0, "iou"] == pytest.approx(
        t["iou_per_image_mean"]
    )
    # The teacher figures are the baseline's, and the report reads them from the baseline's file.
    assert saved["teacher_on_rgb"] == teacher_record["teacher_on_rgb"]
    assert saved["teacher_iou_vs_gt"] == teacher_record["teacher_iou_vs_gt"]
    teacher_rows = views[views["source"] == "teacher"].reset_index(drop=True)
    assert teacher_rows.equals(pd.read_csv(baseline["teacher_views"]))
    edited = {**teacher_record, "teacher_iou_vs_gt": 0.123}
    edited["teacher_on_rgb"] = {**teacher_record["teacher_on_rgb"], "tasks": {"cube": {"iou_per_image_mean": 0.456}}}
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    assert load_benchmarks([out / "metrics.json"], [tmp_path / "edited.json"])["teacher_iou_vs_gt"].tolist() == [0.123]
    per_task, _ = benchmark_per_task([out / "metrics.json"], [tmp_path / "edited.json"])
    assert per_task.loc[0, "teacher_iou"] == 0.456
    (tmp_path / "other.json").write_text(json.dumps({**teacher_record, "teacher": "sam_vit_h"}))
    with pytest.raises(ReportError, match="sam_vit_h"):
        load_benchmarks([out / "metrics.json"], [tmp_path / "other.json"])


def test_baseline_of_another_teacher_is_refused(scene_dir, layout, tmp_path):
    config = BenchmarkConfig(mesh_views=0)
    baseline = _teacher_baseline(scene_dir, layout, tmp_path / "t", config)
    record = json.loads(baseline["teacher_metrics"].read_text())
    baseline["teacher_metrics"].write_text(json.dumps({**record, "teacher": "sam_vit_h"}))
    with pytest.raises(ValueError, match="evaluate_benchmark_teacher"):
        _evaluate(scene_dir, layout, tmp_path, ("m.json", "v.csv", "q.png"), **baseline, config=config)
    assert not (tmp_path / "m.json").exists()


def test_bad_layout_fails_before_loading(scene_dir, layout, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(layout, bad)
    data = json.loads((bad / "prompts.json").read_text())
    data["tasks"][0]["targets"] = ["img_000", "nope_123"]
    (bad / "prompts.json").write_text(json.dumps(data))
    with pytest.raises(LayoutError, match="nope_123"):
        _evaluate(scene_dir, bad, tmp_path, ("m.json", "v.csv", "q.png"), dataset="s", scene="t")
    assert not (tmp_path / "m.json").exists()


def test_shared_renders_give_the_same_figures(scene_dir, layout, tmp_path):
    """rule render_benchmark_views renders every camera once; evaluate_benchmark started from that
    file renders nothing itself and writes the same figures as when it renders everything."""
    from san.pipeline.render_benchmark_views import BenchmarkRendersError, render_benchmark_views

    config = BenchmarkConfig(mesh_views=3, surface_samples=500, propagation="chain")
    files = _stage_files(scene_dir)
    summary = render_benchmark_views(
        cameras=files["cameras"], model=files["model"], layout_dir=layout, out_path=tmp_path / "r.pt", config=config
    )
    assert summary["renders"] == 9  # the reference at the annotation size, then the 8 other views of the chain
    run = dict(names=("metrics.json", "views.csv", "q.png"), dataset="s", scene="t", config=config)
    records = {
        name: _evaluate(scene_dir, layout, tmp_path / name, renders=renders, **run)
        for name, renders in (("live", None), ("shared", tmp_path / "r.pt"))
    }
    assert records["shared"]["renders"] == {"prerendered": 9, "rendered_here": 0}
    assert records["live"]["renders"] == {"prerendered": 0, "rendered_here": 9}
    for key in ("imitation", "teacher_on_rgb", "mesh_segmentation"):
        assert records["shared"][key] == records["live"][key]
    assert (tmp_path / "shared" / "views.csv").read_text() == (tmp_path / "live" / "views.csv").read_text()

    import torch

    state = torch.load(tmp_path / "r.pt", weights_only=True)
    torch.save(state | {"nerf_sha256": "0" * 64}, tmp_path / "stale.pt")  # rendered from another model.pt
    with pytest.raises(BenchmarkRendersError, match="another NeRF"):
        _evaluate(scene_dir, layout, tmp_path / "stale", renders=tmp_path / "stale.pt", **run)
    assert not (tmp_path / "stale").exists()  # refused before anything is written
