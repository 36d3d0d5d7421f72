"""Rules ``make_tables`` and ``plot_figures``: every ``metrics.json`` -> ``results/report/``.

Both take explicit file lists (the rules' inputs), never globs:

* :func:`make_tables` writes ``table1_timing``, ``table2_ablation`` and ``iou_per_scene``, each as
  ``.csv``, ``.md`` and ``.tex`` (see :mod:`san.report.tables`).
* :func:`plot_figures` writes the per-scene IoU bars, the timing breakdown, a grid of the
  per-scene ``qualitative.png`` panels and the training curves (see :mod:`san.report.figures`).

Training curves are labelled from their path, ``.../{dataset}/{scene}/nerf/training_curve.csv``
and ``.../{dataset}/{scene}/imitation/{variant}/training_curve.csv``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

from san.report import ReportConfig, tables
from san.report import figures as figs

log = logging.getLogger("san")

TABLES = ("table1_timing", "table2_ablation", "iou_per_scene")


def make_tables(
    metrics_files: Sequence[str | os.PathLike], out_dir: str | os.PathLike, config: ReportConfig = ReportConfig()
) -> dict[str, list[Path]]:
    """Write the three tables into ``out_dir``; returns ``{table name: [csv, md, tex]}``."""
    df = tables.load_metrics(metrics_files)
    out_dir = Path(out_dir)
    built = {
        "table1_timing": tables.table1_timing(df, config.table1_variant),
        "table2_ablation": tables.table2_ablation(df),
        "iou_per_scene": tables.iou_per_scene(df),
    }
    written = {name: tables.write_table(table, caption, out_dir / name) for name, (table, caption) in built.items()}
    log.info(
        "make_tables: %d metrics files (%d scenes, variants %s) -> %s",
        len(df),
        df[["dataset", "scene"]].drop_duplicates().shape[0],
        sorted(df["variant"].unique()),
        out_dir,
    )
    return written


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
    """
    df = tables.load_metrics(metrics_files)
    note = f"{tables.untrained_note(df)} {tables.procedural_note(df)}".strip()
    out = [
        figs.iou_bars(tables.iou_per_scene(df)[0], iou_png, note, config.dpi),
        figs.timing_bars(tables.table1_timing(df, config.table1_variant)[0], timing_png, note, config.dpi),
    ]
    if qualitative_files is None:
        qualitative_files = [Path(p).with_name("qualitative.png") for p in metrics_files]
    by_folder = {Path(q).parent: Path(q) for q in qualitative_files}
    order = sorted(
        range(len(df)),
        key=lambda i: (df["variant"].iat[i] != config.table1_variant, df["dataset"].iat[i], df["scene"].iat[i]),
    )
    chosen = []
    for i in order:
        q = by_folder.get(Path(df["path"].iat[i]).parent)
        if q is not None and q.is_file():
            chosen.append((q, f"{df['dataset'].iat[i]}/{df['scene'].iat[i]} [{df['variant'].iat[i]}]"))
    chosen = chosen[: config.qualitative_max]
    out.append(
        figs.qualitative_grid([q for q, _ in chosen], [label for _, label in chosen], qualitative_png, note, config.dpi)
    )
    nerf, imitation = [], []
    for c in curve_files:
        stage, label = curve_label(c)
        (nerf if stage == "nerf" else imitation).append((label, c))
    out.append(figs.training_curves(nerf, imitation, curves_png, note, config.dpi))
    log.info("plot_figures: %s", ", ".join(str(p) for p in out))
    return out
