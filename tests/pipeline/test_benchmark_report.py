"""Report side of the ground-truth benchmark: Table 2's *_vs_gt columns, the per-task table, the
benchmark panel in the qualitative grid, the NeRF curve in PSNR, and .tex tables that compile."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from san.pipeline.report import make_tables, plot_figures, table_outputs
from san.report import ReportConfig
from san.report.figures import benchmark_figure
from tests.pipeline.conftest import figure_files


def _task(iou, pooled, acc, held=2):
    return {
        "iou_per_image_mean": iou,
        "iou_pooled": pooled,
        "accuracy_per_image_mean": acc,
        "accuracy_pooled": acc,
        "n_views": 2,
        "reference_iou": 0.9,
        "held_out_targets": held,
        "held_out_fraction": held / 2,
        "targets_without_prompt": 0,
        "reference_view": "view_001",
        "reference_split": "train",
    }


def _bench(dataset, scene, variant, ious, teacher_ious):
    tasks = {f"obj{i}": _task(v, v - 0.01, 0.9 + v / 10) for i, v in enumerate(ious)}
    ttasks = {f"obj{i}": _task(v, v - 0.02, 0.95) for i, v in enumerate(teacher_ious)}
    return {
        "dataset": dataset,
        "scene": scene,
        "variant": variant,
        "teacher": "sam_untrained_tiny",
        "untrained": True,
        "imitation": {"miou": float(np.mean(ious)), "iou_pooled": 0.5, "accuracy": 0.97, "tasks": tasks},
        "teacher_on_rgb": {"miou": float(np.mean(teacher_ious)), "iou_pooled": 0.4, "accuracy": 0.95, "tasks": ttasks},
        "iou_vs_gt": float(np.mean(ious)),
        "iou_pooled_vs_gt": 0.5,
        "accuracy_vs_gt": 0.97,
        "teacher_iou_vs_gt": float(np.mean(teacher_ious)),
        "teacher_accuracy_vs_gt": 0.95,
        "mesh_segmentation": {"views": 3, "tasks": {"obj0": {"surface_iou": 0.7}}},
        "mesh_surface_iou": 0.7,
    }


@pytest.fixture
def bench_files(fake_results, tmp_path):
    out = []
    for variant, ious in (("full", [0.8, 0.6]), ("no_aug", [0.5, 0.3])):
        folder = tmp_path / "results" / "demo" / "demo" / "benchmark" / variant
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(_bench("demo", "demo", variant, ious, [0.9, 0.7])))
        rows = [_panel_row()]
        benchmark_figure(rows, f"demo [{variant}] UNTRAINED", folder / "qualitative.png", dpi=40)
        out.append(folder / "metrics.json")
    return out


def _panel_row():
    img = np.random.default_rng(0).random((16, 16, 3))
    m = np.zeros((16, 16), dtype=bool)
    m[4:10, 5:12] = True
    return {
        "task": "obj0",
        "reference_view": "view_001",
        "reference_image": img,
        "reference_prompts": np.array([[7.5, 6.5, 1]]),
        "target_view": "view_000",
        "target_held_out": True,
        "target_image": img,
        "target_prompts": np.array([[8.5, 6.5, 1]]),
        "teacher_mask": m,
        "teacher_iou": 0.5,
        "imitation_mask": m,
        "imitation_iou": 0.75,
        "gt_mask": np.kron(m, np.ones((2, 2), dtype=bool)),
    }


def test_table2_and_per_task_table(fake_results, bench_files, tmp_path):
    metrics, _ = fake_results
    out = tmp_path / "report"
    written = make_tables(metrics, table_outputs(out), benchmark_files=bench_files)
    assert [p.name for p in written["benchmark_per_task"]] == [
        "benchmark_per_task.csv",
        "benchmark_per_task.md",
        "benchmark_per_task.tex",
    ]
    t2 = pd.read_csv(out / "table2_ablation.csv").set_index("variant")
    assert t2.loc["full", "iou_vs_gt"] == pytest.approx(0.7) and t2.loc["no_aug", "iou_vs_gt"] == pytest.approx(0.4)
    assert t2.loc["full", "teacher_iou_vs_gt"] == pytest.approx(0.8) and t2.loc[
        "full", "accuracy_vs_gt"
    ] == pytest.approx(0.97)
    assert np.isnan(t2.loc["mesh", "iou_vs_gt"])  # no benchmark for the mesh variant
    bt = pd.read_csv(out / "benchmark_per_task.csv")
    assert list(bt["task"]) == ["obj0", "obj1", "mean", "obj0", "obj1", "mean"]
    full = bt[bt["variant"] == "full"].set_index("task")
    assert full.loc["obj0", "iou"] == pytest.approx(0.8) and full.loc["obj0", "teacher_iou"] == pytest.approx(0.9)
    assert full.loc["mean", "iou"] == pytest.approx(0.7) and full.loc["mean", "iou_pooled"] == pytest.approx(0.5)
    assert full.loc["obj0", "mesh_surface_iou"] == pytest.approx(0.7) and np.isnan(full.loc["obj1", "mesh_surface_iou"])
    assert "UNTRAINED" in (out / "benchmark_per_task.md").read_text().splitlines()[0]


def test_no_benchmark_scene_gives_an_empty_table_that_says_so(fake_results, tmp_path):
    metrics, _ = fake_results
    make_tables(metrics, table_outputs(tmp_path / "r"))
    assert "No scene has a ground-truth layout" in (tmp_path / "r" / "benchmark_per_task.md").read_text()


def _tex_structure_ok(tex: str) -> None:
    assert tex.count(r"\begin{table}") == 1 and tex.count(r"\end{table}") == 1
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    body = tex[tex.index(r"\begin{tabular}") : tex.index(r"\end{tabular}")]
    ncols = len(body[body.index("{", len(r"\begin{tabular}")) + 1 : body.index("}", len(r"\begin{tabular}") + 1)])
    for line in body.splitlines()[1:]:
        if line.rstrip().endswith(r"\\"):
            # unescaped & separate cells
            assert line.replace(r"\&", "").count("&") == ncols - 1, line


def test_tex_tables_compile(fake_results, bench_files, tmp_path):
    metrics, _ = fake_results
    out = tmp_path / "report"
    make_tables(metrics, table_outputs(out), benchmark_files=bench_files)
    names = ("table1_timing", "table2_ablation", "iou_per_scene", "benchmark_per_task")
    for name in names:
        _tex_structure_ok((out / f"{name}.tex").read_text())
    if shutil.which("pdflatex") is None:
        pytest.skip(
            "pdflatex not installed: the structural check above ran; install texlive-latex-recommended to compile"
        )
    doc = tmp_path / "doc.tex"
    inputs = "\n".join(rf"\input{{{out / n}.tex}}" for n in names)
    doc.write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage[margin=0.3in,paperwidth=60in,paperheight=30in]{geometry}\n"
        f"\\begin{{document}}\n{inputs}\n\\end{{document}}\n"
    )
    r = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_figures_use_benchmark_panels_and_psnr(fake_results, bench_files, tmp_path):
    metrics, curves = fake_results
    nerf_curve = next(c for c in curves if c.parent.name == "nerf")
    nerf_curve.with_name("metrics.json").write_text(json.dumps({"psnr": 21.5}))
    out = tmp_path / "figs"
    paths = plot_figures(
        metrics,
        curves,
        *figure_files(out),
        config=ReportConfig(dpi=40),
        benchmark_files=bench_files,
    )
    assert all(p.is_file() and p.stat().st_size > 1000 for p in paths)


def test_nerf_training_curve_plots_test_psnr(tmp_path, monkeypatch):
    """The NeRF panel plots the curve's held-out ``test_psnr`` points (rows without one skipped),
    labelled as test PSNR, and stars the final model's full test-view PSNR."""
    from san.report import figures

    nerf = tmp_path / "nerf"
    nerf.mkdir()
    (nerf / "training_curve.csv").write_text(
        "step,loss,psnr,lr,wall_seconds,test_psnr\n"
        "100,0.1,10.0,0.01,1.0,\n200,0.05,13.0,0.01,2.0,12.5\n300,0.04,14.0,0.01,3.0,\n400,0.03,15.0,0.01,4.0,14.25\n"
    )
    (nerf / "metrics.json").write_text(json.dumps({"psnr": 14.5}))
    imitation = tmp_path / "imitation.csv"
    imitation.write_text("step,loss\n1,0.5\n2,0.25\n")
    saved = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path, dpi: saved.setdefault("fig", fig))
    figures.training_curves([("demo", nerf / "training_curve.csv")], [("full", imitation)], tmp_path / "c.png")
    ax = saved["fig"].axes[0]
    assert "test PSNR" in ax.get_ylabel() and "training" not in ax.get_ylabel()
    curve, star = ax.get_lines()
    assert list(curve.get_xdata()) == [200, 400] and list(curve.get_ydata()) == [12.5, 14.25]
    assert list(star.get_ydata()) == [14.5]
