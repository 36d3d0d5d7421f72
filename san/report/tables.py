"""The report's tables, built with pandas from every scene's and variant's ``metrics.json``.

* :func:`table1_timing` (Table 1, inference efficiency): one row per timing teacher and device;
  per-step medians (ms) over the scenes of one variant, the encoder speed-up and both frame rates.
* :func:`table2_ablation` (Table 2): one row per teacher and variant; feature MSE, cosine, mask
  IoU, the teacher's shift ceiling and training minutes, each the mean over scenes.
* :func:`iou_per_scene`: one row per scene plus a mean row per dataset and one over all scenes;
  one IoU column per variant and the ceiling.

Each table carries an ``untrained`` column (``yes`` for teachers with random weights) and its
caption names any untrained teacher. :func:`write_table` writes ``.csv`` (full precision),
``.md`` (caption line + pipe table) and ``.tex`` (``table`` float), the last two with numbers
shown by :func:`format_number`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from san.evaluation.timing import DECODE, IMITATION_MESH, IMITATION_VOLUME, RGB_RENDER, TEACHER_ENCODE
from san.utils.io import atomic_write_text

VARIANT_ORDER = ("full", "no_aug", "no_cache", "mesh", "no_corr")
VARIANT_CHANGES = {
    "full": "all components (camera augmentation, feature cache, volumetric features)",
    "no_aug": "no camera augmentation",
    "no_cache": "no feature cache: teacher features computed fresh every step",
    "mesh": "features on the mesh surface instead of volume rendering",
    "no_corr": "no cross-scale correlation loss",
}
TIMING_STEPS = (RGB_RENDER, TEACHER_ENCODE, IMITATION_VOLUME, IMITATION_MESH, DECODE)
FPS_KEYS = ("original", "imitation", "imitation_volume", "imitation_mesh")
UNTRAINED_NOTE = "UNTRAINED teacher(s) with random weights: {names}. Their masks and timings exercise the pipeline; they are not SAM's results."


PROCEDURAL_NOTE = (
    "Teacher(s) trained on procedural scenes: {names} (SAM's architecture trained by this project on its "
    "procedural scenes; not SAM, and it knows procedural objects, not photographs)."
)


class ReportError(ValueError):
    """A metrics file the report cannot use; the message names the file."""


REQUIRED_KEYS = (
    "dataset",
    "scene",
    "variant",
    "teacher",
    "untrained",
    "mask_iou",
    "feature_mse",
    "feature_cosine",
    "timing_ms",
    "fps",
)


def load_metrics(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per ``metrics.json`` (explicit list), nested timings flattened.

    Columns: ``dataset, scene, variant, teacher, untrained, timing_teacher,
    timing_teacher_untrained, device, render_size, n_views, mask_iou, feature_mse, feature_cosine,
    iou_ceiling, train_minutes``, ``ms_<step>`` for every timed step, ``fps_<key>``, ``path``.
    """
    rows = []
    for p in paths:
        p = Path(p)
        try:
            m = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ReportError(f"{p}: cannot read metrics ({e})") from e
        missing = [k for k in REQUIRED_KEYS if k not in m]
        if missing:
            raise ReportError(f"{p}: missing key(s) {missing}")
        row = {
            "dataset": m["dataset"],
            "scene": m["scene"],
            "variant": m["variant"],
            "teacher": m["teacher"],
            "untrained": bool(m["untrained"]),
            "teacher_kind": m.get("teacher_kind", "untrained" if m["untrained"] else "sam"),
            "timing_teacher": m.get("timing_teacher", m["teacher"]),
            "timing_teacher_untrained": bool(m.get("timing_teacher_untrained", m["untrained"])),
            "device": m.get("device", "unknown"),
            "render_size": m.get("render_size"),
            "n_views": m.get("n_views"),
            "mask_iou": _num(m["mask_iou"]),
            "feature_mse": _num(m["feature_mse"]),
            "feature_cosine": _num(m["feature_cosine"]),
            "iou_ceiling": _num(m.get("iou_ceiling")),
            "train_minutes": _num(m.get("train_minutes")),
            "path": str(p),
        }
        row.update({f"ms_{k}": _num(v) for k, v in m["timing_ms"].items()})
        row.update({f"fps_{k}": _num(v) for k, v in m["fps"].items()})
        rows.append(row)
    if not rows:
        raise ReportError("no metrics files given")
    df = pd.DataFrame(rows)
    dup = df.duplicated(["dataset", "scene", "variant"], keep=False)
    if dup.any():
        raise ReportError(f"duplicate scene/variant rows: {sorted(df.loc[dup, 'path'])}")
    return df


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def untrained_note(df: pd.DataFrame) -> str:
    """The sentence every caption carries when a quality or timing teacher is untrained ('' if none)."""
    names = sorted(
        set(df.loc[df["untrained"], "teacher"]) | set(df.loc[df["timing_teacher_untrained"], "timing_teacher"])
    )
    return UNTRAINED_NOTE.format(names=", ".join(names)) if names else ""


def procedural_note(df: pd.DataFrame) -> str:
    """The sentence every caption carries when a teacher was trained on procedural scenes ('' if none)."""
    if "teacher_kind" not in df:
        return ""
    names = sorted(set(df.loc[df["teacher_kind"] == "procedural", "teacher"]))
    return PROCEDURAL_NOTE.format(names=", ".join(names)) if names else ""


def _variant_key(v: str) -> tuple[int, str]:
    return (VARIANT_ORDER.index(v), v) if v in VARIANT_ORDER else (len(VARIANT_ORDER), v)


def _caption(text: str, df: pd.DataFrame) -> str:
    note = f"{untrained_note(df)} {procedural_note(df)}".strip()
    return f"{text} {note}".strip()


def table1_timing(df: pd.DataFrame, variant: str = "full") -> tuple[pd.DataFrame, str]:
    """Table 1: per-step medians over scenes, one row per timing teacher and device.

    Each step and frame rate is the median over the scenes of ``variant`` that timed it, or, when
    no scene of ``variant`` did, over every variant that did: the mesh-surface encoding is timed
    only by the ``mesh`` variant, whose field renders mesh surfaces.

    Returns:
        ``(table, caption)``; columns ``timing_teacher, untrained, device, scenes``, then
        ``<step>_ms`` for each step of :data:`TIMING_STEPS` that was timed, ``encode_speedup``
        (teacher encode / volumetric imitation encode), ``fps_original``, ``fps_imitation``
        (and ``fps_imitation_mesh`` when timed) and ``fps_speedup``.
    """
    rows = []
    for (teacher, untrained, device), g in df.groupby(
        ["timing_teacher", "timing_teacher_untrained", "device"], sort=True
    ):
        main = g[g["variant"] == variant]
        row = {
            "timing_teacher": teacher,
            "untrained": _yes(untrained),
            "device": device,
            "scenes": int(g[["dataset", "scene"]].drop_duplicates().shape[0]),
        }
        columns = [(f"ms_{s}", f"{s}_ms") for s in TIMING_STEPS] + [
            (f"fps_{k}", f"fps_{k}") for k in ("original", "imitation", "imitation_mesh")
        ]
        for col, name in columns:
            if col not in g:
                continue
            source = main if col in main and main[col].notna().any() else g
            if source[col].notna().any():
                row[name] = float(source[col].median())
        if f"{TEACHER_ENCODE}_ms" in row and f"{IMITATION_VOLUME}_ms" in row:
            row["encode_speedup"] = row[f"{TEACHER_ENCODE}_ms"] / row[f"{IMITATION_VOLUME}_ms"]
        if "fps_original" in row and "fps_imitation" in row:
            row["fps_speedup"] = row["fps_imitation"] / row["fps_original"]
        rows.append(row)
    table = pd.DataFrame(rows)
    order = [
        "timing_teacher",
        "untrained",
        "device",
        "scenes",
        *[f"{s}_ms" for s in TIMING_STEPS],
        "encode_speedup",
        "fps_original",
        "fps_imitation",
        "fps_imitation_mesh",
        "fps_speedup",
    ]
    table = table[[c for c in order if c in table]]
    devices = ", ".join(sorted(set(df["device"])))
    caption = _caption(
        f"Table 1. Inference efficiency (variant {variant}; mesh-surface encoding from the mesh variant; device: {devices}): "
        "median milliseconds over scenes of RGB rendering, feature encoding by the teacher and by imitation "
        "(volumetric / mesh surface), decoding of one click, and frames per second of the original "
        "(render + encode + decode) and imitation (render + rendered features + decode) pipelines.",
        df,
    )
    return table, caption


def table2_ablation(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Table 2: one row per ``(teacher, variant)``, means over scenes.

    Returns:
        ``(table, caption)``; columns ``variant, change, teacher, untrained, scenes,
        feature_mse, feature_cosine, mask_iou, iou_ceiling, train_minutes``.
    """
    rows = []
    for (teacher, untrained, variant), g in df.groupby(["teacher", "untrained", "variant"], sort=False):
        rows.append(
            {
                "variant": variant,
                "change": VARIANT_CHANGES.get(variant, variant),
                "teacher": teacher,
                "untrained": _yes(untrained),
                "scenes": int(len(g)),
                "feature_mse": g["feature_mse"].mean(),
                "feature_cosine": g["feature_cosine"].mean(),
                "mask_iou": g["mask_iou"].mean(),
                "iou_ceiling": g["iou_ceiling"].mean(),
                "train_minutes": g["train_minutes"].mean(),
            }
        )
    table = pd.DataFrame(rows)
    table = table.iloc[
        sorted(range(len(table)), key=lambda i: (table["teacher"].iat[i], _variant_key(table["variant"].iat[i])))
    ].reset_index(drop=True)
    caption = _caption(
        "Table 2. Ablations: feature MSE and cosine similarity (imitated vs teacher features, valid region), "
        "mask IoU (imitation vs teacher masks, click grid) beside the teacher's own half-patch shift ceiling, "
        "and training time of the imitation stage; means over scenes.",
        df,
    )
    return table, caption


def iou_per_scene(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Mask IoU per scene and variant, plus per-dataset means and the mean over all scenes.

    Returns:
        ``(table, caption)``; columns ``dataset, scene, teacher, untrained, iou_ceiling`` then
        ``iou_<variant>`` per variant. Mean rows have ``scene = "mean"`` (and ``dataset = "all"``
        for the overall one).
    """
    variants = sorted(df["variant"].unique(), key=_variant_key)
    wide = df.pivot_table(index=["dataset", "scene"], columns="variant", values="mask_iou", aggfunc="mean").reindex(
        columns=variants
    )
    wide.columns = [f"iou_{v}" for v in wide.columns]
    info = df.groupby(["dataset", "scene"]).agg(
        teacher=("teacher", lambda s: ", ".join(sorted(set(s)))),
        untrained=("untrained", "any"),
        iou_ceiling=("iou_ceiling", "mean"),
    )
    scenes = info.join(wide).reset_index().sort_values(["dataset", "scene"], kind="stable")
    scenes["untrained"] = scenes["untrained"].map(_yes)
    value_cols = ["iou_ceiling", *wide.columns]
    parts = []
    for dataset, g in scenes.groupby("dataset", sort=True):
        parts.append(g)
        parts.append(_mean_row(g, dataset, value_cols))
    parts.append(_mean_row(scenes, "all", value_cols))
    table = pd.concat(parts, ignore_index=True)
    caption = _caption(
        "Mask IoU per scene (imitation vs teacher masks, mean over held-out views of the click grid), "
        "per variant, with the teacher's half-patch shift ceiling; dataset means are means over scenes.",
        df,
    )
    return table, caption


def _mean_row(g: pd.DataFrame, dataset: str, value_cols: Sequence[str]) -> pd.DataFrame:
    row = {
        "dataset": dataset,
        "scene": "mean",
        "teacher": ", ".join(sorted({t for s in g["teacher"] for t in s.split(", ")})),
        "untrained": "yes" if (g["untrained"] == "yes").any() else "no",
    }
    row.update({c: g[c].mean() for c in value_cols})
    return pd.DataFrame([row])


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
        text = text.replace(a, b)
    return text


def write_table(table: pd.DataFrame, caption: str, stem: str | os.PathLike, label: str | None = None) -> list[Path]:
    """Write ``stem.csv``, ``stem.md`` and ``stem.tex`` atomically; returns the three paths."""
    stem = Path(stem)
    label = label or f"tab:{stem.name}"
    csv_path, md_path, tex_path = (stem.with_name(stem.name + ext) for ext in (".csv", ".md", ".tex"))
    atomic_write_text(csv_path, table.to_csv(index=False))
    shown = table.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(format_number)
    align = [
        "right" if pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c]) else "left"
        for c in table.columns
    ]
    md = shown.to_markdown(index=False, disable_numparse=True, colalign=align)
    atomic_write_text(md_path, f"{caption}\n\n{md}\n")
    tex = shown.to_latex(index=False, escape=True, caption=_latex_escape(caption), label=label)
    atomic_write_text(tex_path, tex)
    return [csv_path, md_path, tex_path]


def format_number(v) -> str:
    """Display form of a table value: ``-`` when missing, no decimals from 100 on, else 4
    significant digits (``60000``, ``624``, ``24.39``, ``0.8223``, ``0.0026``)."""
    if v is None or not np.isfinite(v):
        return "-"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.4g}"
