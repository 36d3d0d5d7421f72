"""The report's figures and the per-scene qualitative panel.

Figures are drawn with matplotlib's object API (:class:`matplotlib.figure.Figure`, rendered by the
Agg canvas), so no pyplot state or display backend is involved. Every figure's title names any untrained teacher (pass the note from
:func:`san.report.tables.untrained_note`). Files are written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.image import imread

from san.evaluation.timing import DECODE, IMITATION_MESH, IMITATION_VOLUME, RGB_RENDER, TEACHER_ENCODE
from san.utils.io import atomic_path

STEP_LABELS = {
    RGB_RENDER: "RGB rendering",
    TEACHER_ENCODE: "encoding: teacher",
    IMITATION_VOLUME: "encoding: imitation (volume)",
    IMITATION_MESH: "encoding: imitation (mesh)",
    DECODE: "decoding (1 click)",
}
# Training-curve columns tried in order for the y axis.
CURVE_Y = ("loss", "mse", "feature_mse", "psnr")


def _save(fig, path: str | os.PathLike, dpi: int) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    return path


def _subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """``(figure, axes)`` like ``pyplot.subplots`` without pyplot."""
    fig = Figure(figsize=kwargs.pop("figsize", None), layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _title(text: str, note: str) -> str:
    return f"{text}\n{note}" if note else text


def _wrap(text: str, width: int = 110) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) if text else text


# ---------------------------------------------------------------------------------- per scene


def _overlay(image: np.ndarray, mask: np.ndarray, color=(1.0, 0.1, 0.1), alpha: float = 0.5) -> np.ndarray:
    out = np.array(image, dtype=np.float64, copy=True)
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color)
    return out.clip(0, 1)


def qualitative_figure(results: Sequence, title: str, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Rendering with the click | teacher mask | imitation mask, one row per kept view.

    Args:
        results: :class:`san.evaluation.protocol.ViewResult` with ``image`` and masks kept; for
            each, the click with the view's median IoU is shown (green dot, masks in red).
        title: figure title (include the untrained label when the teacher is untrained).
        path: PNG to write.
    """
    kept = [r for r in results if r.image is not None and r.teacher_masks is not None]
    rows = max(1, len(kept))
    fig, axes = _subplots(rows, 3, figsize=(9.6, 3.0 * rows + 0.6), squeeze=False)
    if not kept:
        for ax in axes.flat:
            ax.axis("off")
        axes[0, 1].text(0.5, 0.5, "no views kept", ha="center", va="center")
    for row, r in zip(axes, kept):
        k = int(np.argsort(r.ious, kind="stable")[len(r.ious) // 2])
        x, y = r.clicks[k]
        panels = (
            (r.image, f"view {r.name}: click {k} at ({x:.1f}, {y:.1f})"),
            (_overlay(r.image, r.teacher_masks[k]), f"teacher mask ({int(r.teacher_area[k])} px)"),
            (_overlay(r.image, r.imitation_masks[k]), f"imitation mask, IoU {r.ious[k]:.3f}"),
        )
        for ax, (img, sub) in zip(row, panels):
            h, w = img.shape[:2]
            # imshow's extent puts pixel (0, 0)'s centre at (0.5, 0.5), the san pixel convention.
            ax.imshow(img, extent=(0, w, h, 0), interpolation="nearest")
            ax.plot([x], [y], "o", color="lime", markersize=7, markeredgecolor="black")
            ax.set_title(sub, fontsize=9)
            ax.axis("off")
    fig.suptitle(_wrap(title, 90), fontsize=10)
    return _save(fig, path, dpi)


# -------------------------------------------------------------------------------------- report


def _outline(ax, mask, color, width: float = 1.6) -> None:
    m = np.asarray(mask, dtype=float)
    if m.any() and not m.all():
        ax.contour(m, levels=[0.5], colors=[color], linewidths=width)


def _fit(mask, image: np.ndarray):
    if mask is None:
        return None
    from san.evaluation.masks import resize_mask

    return resize_mask(mask, (image.shape[1], image.shape[0]))


def _plot_clicks(ax, prompts, markersize: float) -> None:
    """Draw ``Kx3`` clicks ``(x, y, label)`` (pixel-centre coordinates) on an ``imshow`` axis as
    stars: lime for positive, red for negative labels."""
    for x, y, label in np.asarray(prompts):
        ax.plot(
            [x - 0.5],
            [y - 0.5],
            marker="*",
            markersize=markersize,
            color="lime" if label > 0 else "red",
            markeredgecolor="black",
        )


def benchmark_figure(
    rows: Sequence[dict], title: str, path: str | os.PathLike, dpi: int = 110, panel_inches: float = 2.9
) -> Path:
    """Ground-truth benchmark panel: one row per task, four columns, masks drawn as outlines.

    Columns: the reference view with the prompt points (green positive, red negative) | the teacher
    mask (teacher on rendered RGB, 3D-tracked prompts) on a target view | the imitation mask on the
    same view | the ground truth. The IoU against the ground truth is printed in each mask panel.
    Each ``rows`` entry has ``task``, ``reference_view``, ``reference_image`` (``HxWx3``),
    ``reference_prompts`` (``Nx3`` ``x, y, label``), ``target_view``, ``target_held_out``,
    ``target_image``, ``target_prompts``, ``teacher_mask`` (or ``None``), ``teacher_iou``,
    ``imitation_mask``, ``imitation_iou``, ``gt_mask``; masks of any size are resized (nearest) to
    their image.
    """
    n = max(1, len(rows))
    fig, axes = _subplots(n, 4, figsize=(4 * panel_inches, n * panel_inches + 0.8), squeeze=False)
    if not rows:
        axes[0, 0].text(0.5, 0.5, "no tasks", ha="center", va="center")
    for r, row in enumerate(rows):
        ref, tgt = np.asarray(row["reference_image"]), np.asarray(row["target_image"])
        ax = axes[r, 0]
        ax.imshow(ref, interpolation="nearest")
        if row["reference_prompts"] is not None:
            _plot_clicks(ax, row["reference_prompts"], markersize=14)
        ax.set_title(f"{row['task']}: click in {row['reference_view']}", fontsize=9)
        held = "held out" if row.get("target_held_out") else "training view"
        for c, (name, key, colour) in enumerate(
            (
                ("teacher on RGB", "teacher", "orange"),
                ("imitation", "imitation", "deepskyblue"),
                ("ground truth", "gt", "yellow"),
            ),
            start=1,
        ):
            ax = axes[r, c]
            ax.imshow(tgt, interpolation="nearest")
            mask = _fit(row.get(f"{key}_mask"), tgt)
            if mask is None:
                ax.text(0.5, 0.5, "not run", transform=ax.transAxes, ha="center", va="center", color="white")
            else:
                _outline(ax, mask, colour)
            if key != "gt" and row.get("target_prompts") is not None:
                _plot_clicks(ax, row["target_prompts"], markersize=9)
            iou = row.get(f"{key}_iou")
            text = (
                f"{name}\n{row['target_view']} ({held})"
                if key == "gt"
                else f"{name}: IoU {iou:.3f}"
                if iou is not None
                else name
            )
            ax.set_title(text, fontsize=9)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(_wrap(title, 120), fontsize=10)
    return _save(fig, path, dpi)


def iou_bars(table: pd.DataFrame, path: str | os.PathLike, note: str = "", dpi: int = 120) -> Path:
    """Grouped bars of mask IoU per scene (one bar per variant) with the ceiling as a black tick.

    Args:
        table: :func:`san.report.tables.iou_per_scene`'s table (mean rows are skipped).
    """
    scenes = table[table["scene"] != "mean"].reset_index(drop=True)
    variants = [c for c in scenes.columns if c.startswith("iou_") and c != "iou_ceiling"]
    n = max(1, len(scenes))
    fig, ax = _subplots(figsize=(max(6.0, 1.2 * n + 2), 4.2))
    width = 0.8 / max(1, len(variants))
    xs = np.arange(n)
    for i, col in enumerate(variants):
        ax.bar(xs - 0.4 + width * (i + 0.5), scenes[col].to_numpy(dtype=float), width, label=col.removeprefix("iou_"))
    if "iou_ceiling" in scenes and scenes["iou_ceiling"].notna().any():
        ax.scatter(
            xs,
            scenes["iou_ceiling"].to_numpy(dtype=float),
            marker="_",
            s=900,
            color="black",
            zorder=3,
            label="teacher shift ceiling",
        )
    ax.set_xticks(xs, [f"{d}/{s}" for d, s in zip(scenes["dataset"], scenes["scene"])], rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mask IoU (imitation vs teacher)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(_title("Mask IoU per scene", _wrap(note)), fontsize=9)
    return _save(fig, path, dpi)


def timing_bars(table: pd.DataFrame, path: str | os.PathLike, note: str = "", dpi: int = 120) -> Path:
    """Per-step median milliseconds (log scale) and frames per second of both pipelines.

    Args:
        table: :func:`san.report.tables.table1_timing`'s table (one row per timing teacher).
    """
    steps = [s for s in STEP_LABELS if f"{s}_ms" in table]
    fig, (ax1, ax2) = _subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    labels = [
        f"{t}{' (untrained)' if u == 'yes' else ''}, {d}"
        for t, u, d in zip(table["timing_teacher"], table["untrained"], table["device"])
    ]
    width = 0.8 / max(1, len(table))
    xs = np.arange(len(steps))
    for i, (_, row) in enumerate(table.iterrows()):
        ax1.bar(xs - 0.4 + width * (i + 0.5), [row.get(f"{s}_ms", np.nan) for s in steps], width, label=labels[i])
    ax1.set_xticks(xs, [STEP_LABELS[s] for s in steps], rotation=20, ha="right", fontsize=8)
    ax1.set_yscale("log")
    ax1.set_ylabel("median ms")
    ax1.grid(axis="y", alpha=0.3, which="both")
    ax1.legend(fontsize=7)
    keys = [k for k in ("fps_original", "fps_imitation", "fps_imitation_mesh") if k in table]
    xs2 = np.arange(len(keys))
    for i, (_, row) in enumerate(table.iterrows()):
        ax2.bar(xs2 - 0.4 + width * (i + 0.5), [row.get(k, np.nan) for k in keys], width, label=labels[i])
    ax2.set_xticks(xs2, [k.removeprefix("fps_").replace("_", " ") for k in keys], fontsize=8)
    ax2.set_yscale("log")
    ax2.set_ylabel("frames per second")
    ax2.grid(axis="y", alpha=0.3, which="both")
    fig.suptitle(_title("Timing breakdown (Table 1)", _wrap(note)), fontsize=9)
    return _save(fig, path, dpi)


def qualitative_grid(
    images: Sequence[str | os.PathLike],
    labels: Sequence[str],
    path: str | os.PathLike,
    note: str = "",
    dpi: int = 120,
    title: str = "Qualitative results: click, teacher mask, imitation mask",
) -> Path:
    """Stack per-scene ``qualitative.png`` files vertically, each labelled."""
    n = max(1, len(images))
    fig, axes = _subplots(n, 1, figsize=(10, 3.4 * n + 0.5), squeeze=False)
    if not images:
        axes[0, 0].text(0.5, 0.5, "no qualitative figures", ha="center", va="center")
    for ax, img_path, label in zip(axes[:, 0], images, labels):
        ax.imshow(imread(str(img_path)))
        ax.set_title(label, fontsize=9)
    for ax in axes[:, 0]:
        ax.axis("off")
    fig.suptitle(_title(title, _wrap(note)), fontsize=10)
    return _save(fig, path, dpi)


def _curve_xy(df: pd.DataFrame, prefer: Sequence[str] = CURVE_Y) -> tuple[np.ndarray, np.ndarray, str] | None:
    ycol = next((c for c in prefer if c in df), None)
    if ycol is None:
        numeric = [
            c for c in df.select_dtypes("number").columns if c not in ("step", "time", "elapsed_s", "seconds", "lr")
        ]
        if not numeric:
            return None
        ycol = numeric[0]
    x = df["step"].to_numpy() if "step" in df else np.arange(len(df))
    return x, df[ycol].to_numpy(dtype=float), ycol


def training_curves(
    nerf: Sequence[tuple[str, str | os.PathLike]],
    imitation: Sequence[tuple[str, str | os.PathLike]],
    path: str | os.PathLike,
    note: str = "",
    dpi: int = 120,
) -> Path:
    """Two panels, NeRF and imitation training curves, one line per ``(label, csv)``.

    NeRF: PSNR in dB. The ``test_psnr`` column (held-out test-view pixels scored during training,
    ``nerf.curve_test_every`` / ``nerf.curve_test_rays``; rows without it are skipped) is plotted when the
    curve has one, labelled "test PSNR"; a curve without it (``nerf.curve_test_every: 0``) falls back to
    the ``psnr`` of the training batches, labelled "training-batch PSNR". The test-view PSNR of
    the finished model on every pixel of every test view (``metrics.json`` beside the curve,
    written by ``train_nerf``) is marked with a star at the last step. Imitation: the first of
    :data:`CURVE_Y` present (else the first numeric column) on a log axis when positive. The x
    axis is ``step`` (else the row number).
    """
    import json

    fig, axes = _subplots(1, 2, figsize=(11, 4.2))
    for ax, curves, name in ((axes[0], nerf, "NeRF (stage 1)"), (axes[1], imitation, "feature imitation (stage 2)")):
        ylabels, all_positive = set(), True
        is_nerf = curves is nerf
        for label, csv in curves:
            df = pd.read_csv(csv)
            if is_nerf and "test_psnr" in df:
                df = df[np.isfinite(df["test_psnr"].to_numpy(dtype=float))]
            xy = _curve_xy(df, ("test_psnr", "psnr", *CURVE_Y) if is_nerf else CURVE_Y)
            if xy is None:
                continue
            x, y, ycol = xy
            ylabels.add(
                {
                    "test_psnr": "test PSNR (dB, held-out test-view pixels)",
                    "psnr": "training-batch PSNR (dB)",
                }.get(ycol, ycol)
                if is_nerf
                else ycol
            )
            all_positive &= bool(np.all(y[np.isfinite(y)] > 0))
            marker = "o" if ycol == "test_psnr" else None
            line = ax.plot(x, y, label=label, linewidth=1, marker=marker, markersize=3)[0]
            final = Path(csv).with_name("metrics.json")
            if is_nerf and final.is_file() and len(x):
                test = json.loads(final.read_text()).get("psnr")
                if test is not None:
                    ax.plot(
                        [x[-1]],
                        [test],
                        marker="*",
                        markersize=11,
                        color=line.get_color(),
                        linestyle="none",
                        label=f"{label}: all test-view pixels, final model ({test:.2f} dB)",
                    )
        if ylabels and all_positive and not is_nerf:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(" / ".join(sorted(ylabels)) or "value")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        if curves:
            ax.legend(fontsize=6)
    fig.suptitle(_title("Training curves", _wrap(note)), fontsize=9)
    return _save(fig, path, dpi)
