"""Rules ``make_tables`` and ``plot_figures``: every ``metrics.json`` -> ``results/report/``.

Both take explicit file lists (the rules' inputs), never globs:

* :func:`make_tables` writes ``table1_timing``, ``table2_ablation`` and ``iou_per_scene``, each as
  ``.csv``, ``.md`` and ``.tex`` (see :mod:`san.report.tables`).
* :func:`make_cost_table` writes ``cost_per_stage`` (wall / CPU seconds and peak RSS per scene and
  stage, from every job's Snakemake ``benchmark:`` file; :mod:`san.report.costs`) and its figure.
* :func:`plot_figures` writes the per-scene IoU bars, the timing breakdown, a grid of the
  per-scene ``qualitative.png`` panels and the training curves (see :mod:`san.report.figures`).

Training curves are labelled from their path, ``.../{dataset}/{scene}/nerf/training_curve.csv``
and ``.../{dataset}/{scene}/imitation/{variant}/training_curve.csv``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

from san.report import ReportConfig, costs, tables
from san.report import figures as figs

log = logging.getLogger("san")

TABLES = ("table1_timing", "table2_ablation", "iou_per_scene", "benchmark_per_task")
TABLE_FORMATS = ("csv", "md", "tex")


def table_outputs(out_dir: str | os.PathLike) -> dict[str, Path]:
    """The outputs of rule ``make_tables`` in ``out_dir``: ``{f"{table}_{format}": path}``."""
    return {f"{name}_{ext}": Path(out_dir) / f"{name}.{ext}" for name in TABLES for ext in TABLE_FORMATS}


def make_tables(
    metrics_files: Sequence[str | os.PathLike],
    outputs: Mapping[str, str | os.PathLike],
    config: ReportConfig = ReportConfig(),
    benchmark_files: Sequence[str | os.PathLike] = (),
    teacher_benchmark_files: Sequence[str | os.PathLike] = (),
) -> dict[str, list[Path]]:
    """Write the tables of :data:`TABLES` to the rule's declared ``outputs``
    (``{f"{table}_{format}": path}``, :func:`table_outputs`); returns ``{table name: [csv, md, tex]}``.

    ``benchmark_files`` are the ground-truth benchmark ``metrics.json`` (rule
    ``evaluate_benchmark``): they fill Table 2's ``*_vs_gt`` columns and ``benchmark_per_task``
    (empty, with a caption saying so, when there are none). ``teacher_benchmark_files`` are the
    scenes' teacher-on-RGB baselines (rule ``evaluate_benchmark_teacher``), the one source of the
    teacher columns (``teacher_iou_vs_gt``, ``teacher_iou``, ...)."""
    missing = sorted(set(table_outputs(".")) - set(outputs))
    if missing:
        raise ValueError(f"make_tables: no output path for {missing}")
    df = tables.load_metrics(metrics_files)
    bench = tables.load_benchmarks(benchmark_files, teacher_benchmark_files)
    per_task, caption = tables.benchmark_per_task(benchmark_files, teacher_benchmark_files)
    if per_task.empty:
        caption = "No scene has a ground-truth layout (scene sheet column benchmark): no benchmark figures."
    built = {
        "table1_timing": tables.table1_timing(df, config.table1_variant),
        "table2_ablation": tables.table2_ablation(df, bench),
        "iou_per_scene": tables.iou_per_scene(df),
        "benchmark_per_task": (per_task, caption),
    }
    written = {
        name: tables.write_table(table, caption, name, paths=[outputs[f"{name}_{ext}"] for ext in TABLE_FORMATS])
        for name, (table, caption) in built.items()
    }
    log.info(
        "make_tables: %d metrics files (%d scenes, variants %s) -> %s",
        len(df),
        df[["dataset", "scene"]].drop_duplicates().shape[0],
        sorted(df["variant"].unique()),
        Path(outputs["table1_timing_csv"]).parent,
    )
    return written


def make_cost_table(
    benchmark_files: Sequence[str | os.PathLike],
    *,
    log_files: Sequence[str | os.PathLike] | None = None,
    csv: str | os.PathLike,
    md: str | os.PathLike,
    tex: str | os.PathLike,
    figure: str | os.PathLike,
    config: ReportConfig = ReportConfig(),
) -> dict:
    """Rule ``make_cost_table``: every per-scene job's Snakemake benchmark file (and its log, in the
    same order, for the exact CPU seconds and peak RSS: :func:`san.report.costs.load_benchmarks`)
    -> the cost table (``csv``, ``md``, ``tex``; :func:`san.report.costs.cost_table`) and its figure; returns the
    suggested Slurm resources per rule (:func:`san.report.costs.suggest_resources`), also logged."""
    import platform

    df = costs.load_benchmarks(benchmark_files, log_files)
    table = costs.cost_table(df, costs.STAGE_ORDER)
    machine = {"host CPUs": os.cpu_count(), "platform": platform.machine()}
    tables.write_table(table, costs.caption(df, machine), "cost_per_stage", paths=[csv, md, tex])
    costs.cost_figure(table, figure, config.dpi)
    suggested = costs.suggest_resources(df)
    log.info("make_cost_table: %d jobs; suggested Slurm resources (1.5x the measured peaks): %s", len(df), suggested)
    return suggested


def curve_label(path: str | os.PathLike) -> tuple[str, str]:
    """``(stage, label)`` of a training-curve path: ``("nerf", "llff/fern")`` or
    ``("imitation", "llff/fern [no_aug]")``."""
    parts = Path(path).parts
    for stage in ("imitation", "nerf"):
        if stage in parts[:-1]:
            i = len(parts) - 1 - parts[::-1].index(stage)
            scene = "/".join(parts[max(0, i - 2) : i])
            if stage == "imitation" and i + 1 < len(parts) - 1:
                return stage, f"{scene} [{parts[i + 1]}]"
            return stage, scene
    raise ValueError(f"{path}: not a .../nerf/ or .../imitation/{{variant}}/ training curve")


def plot_figures(
    metrics_files: Sequence[str | os.PathLike],
    curve_files: Sequence[str | os.PathLike],
    iou_png: str | os.PathLike,
    timing_png: str | os.PathLike,
    qualitative_png: str | os.PathLike,
    curves_png: str | os.PathLike,
    qualitative_files: Sequence[str | os.PathLike] | None = None,
    config: ReportConfig = ReportConfig(),
    benchmark_files: Sequence[str | os.PathLike] = (),
) -> list[Path]:
    """Write the four report figures.

    Args:
        metrics_files: every ``metrics.json``.
        curve_files: NeRF and imitation ``training_curve.csv`` files.
        iou_png, timing_png, qualitative_png, curves_png: the figures to write.
        qualitative_files: the per-scene ``qualitative.png`` panels, each matched to the
            ``metrics.json`` in its folder (any order); ``None`` takes the ``qualitative.png``
            beside each ``metrics.json`` (the same rule writes both). The grid shows
            ``config.table1_variant`` first, then the other variants, at most
            ``config.qualitative_max`` panels.
        config: the ``report`` config section.
        benchmark_files: ground-truth benchmark ``metrics.json`` files; when given, the
            qualitative grid shows the ``qualitative.png`` beside each (reference click, teacher,
            imitation and ground-truth outlines with IoUs) instead of the click-grid panels.
    """
    df = tables.load_metrics(metrics_files)
    note = f"{tables.untrained_note(df)} {tables.procedural_note(df)}".strip()
    out = [
        figs.iou_bars(tables.iou_per_scene(df)[0], iou_png, note, config.dpi),
        figs.timing_bars(tables.table1_timing(df, config.table1_variant)[0], timing_png, note, config.dpi),
    ]
    grid_df, grid_title = df, "Qualitative results: click, teacher mask, imitation mask"
    if benchmark_files:
        grid_df = tables.load_benchmarks(benchmark_files)
        qualitative_files = [Path(p).with_name("qualitative.png") for p in benchmark_files]
        grid_title = (
            "Against ground truth: reference click | teacher on RGB | imitation | ground truth (outlines, IoU vs GT)"
        )
    elif qualitative_files is None:
        qualitative_files = [Path(p).with_name("qualitative.png") for p in metrics_files]
    by_folder = {Path(q).parent: Path(q) for q in qualitative_files}
    order = sorted(
        range(len(grid_df)),
        key=lambda i: (
            grid_df["variant"].iat[i] != config.table1_variant,
            grid_df["dataset"].iat[i],
            grid_df["scene"].iat[i],
        ),
    )
    chosen = []
    for i in order:
        q = by_folder.get(Path(grid_df["path"].iat[i]).parent)
        if q is not None and q.is_file():
            chosen.append((q, f"{grid_df['dataset'].iat[i]}/{grid_df['scene'].iat[i]} [{grid_df['variant'].iat[i]}]"))
    chosen = chosen[: config.qualitative_max]
    out.append(
        figs.qualitative_grid(
            [q for q, _ in chosen], [label for _, label in chosen], qualitative_png, note, config.dpi, title=grid_title
        )
    )
    nerf, imitation = [], []
    for c in curve_files:
        stage, label = curve_label(c)
        (nerf if stage == "nerf" else imitation).append((label, c))
    out.append(figs.training_curves(nerf, imitation, curves_png, note, config.dpi))
    log.info("plot_figures: %s", ", ".join(str(p) for p in out))
    return out
