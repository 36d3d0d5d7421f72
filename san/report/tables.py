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
from san.imitation.config import VARIANTS
from san.utils.io import atomic_write_text

VARIANT_ORDER = VARIANTS
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


def _read_record(p: Path, required, what: str) -> dict:
    """The JSON object in ``p``; :class:`ReportError` naming ``p`` when it cannot be read (``what``
    says what it should hold) or lacks any of the ``required`` keys."""
    try:
        m = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ReportError(f"{p}: cannot read {what} ({e})") from e
    missing = [k for k in required if k not in m]
    if missing:
        raise ReportError(f"{p}: missing key(s) {missing}")
    return m


def load_metrics(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per ``metrics.json`` (explicit list), nested timings flattened.

    Columns: ``dataset, scene, variant, teacher, untrained, timing_teacher,
    timing_teacher_untrained, device, render_size, n_views, mask_iou, feature_mse, feature_cosine,
    iou_ceiling, train_minutes``, ``ms_<step>`` for every timed step, ``fps_<key>``, ``path``.
    """
    rows = []
    for p in paths:
        p = Path(p)
        m = _read_record(p, REQUIRED_KEYS, "metrics")
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
            "text_iou": _num(m.get("text_iou")),
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


def table2_ablation(df: pd.DataFrame, bench: pd.DataFrame | None = None) -> tuple[pd.DataFrame, str]:
    """Table 2: one row per ``(teacher, variant)``, means over scenes.

    Args:
        df: :func:`load_metrics`.
        bench: :func:`load_benchmarks` (ground-truth figures), or ``None``.

    Returns:
        ``(table, caption)``; columns ``variant, change, teacher, untrained, scenes,
        feature_mse, feature_cosine, mask_iou, iou_ceiling[, text_iou], iou_vs_gt, accuracy_vs_gt,
        teacher_iou_vs_gt, train_minutes`` (``text_iou`` only when a run measured text prompts); the ``*_vs_gt`` columns are means over the scenes with
        a ground-truth layout (``-`` when none has one).
    """
    rows = []
    for (teacher, untrained, variant), g in df.groupby(["teacher", "untrained", "variant"], sort=False):
        gt = (
            None
            if bench is None or bench.empty
            else bench[(bench["teacher"] == teacher) & (bench["variant"] == variant)]
        )
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
                **{
                    k: (gt[k].mean() if gt is not None and len(gt) else float("nan"))
                    for k in ("iou_vs_gt", "accuracy_vs_gt", "teacher_iou_vs_gt")
                },
                "train_minutes": g["train_minutes"].mean(),
            }
        )
    table = pd.DataFrame(rows)
    texts = "text_iou" in df and bool(df["text_iou"].notna().any())
    if texts:  # teachers with a text head (SAM 3): protocol step 7, only when a run measured it
        means = df.groupby(["teacher", "variant"], sort=False)["text_iou"].mean()
        table.insert(
            table.columns.get_loc("iou_ceiling") + 1,
            "text_iou",
            [means.get((t, v), float("nan")) for t, v in zip(table["teacher"], table["variant"])],
        )
    table = table.iloc[
        sorted(range(len(table)), key=lambda i: (table["teacher"].iat[i], _variant_key(table["variant"].iat[i])))
    ].reset_index(drop=True)
    caption = _caption(
        "Table 2. Ablations: feature MSE and cosine similarity (imitated vs teacher features, valid region), "
        "mask IoU (imitation vs teacher masks, click grid) beside the teacher's own half-patch shift ceiling, "
        "mIoU and pixel accuracy against ground-truth masks (one prompt per object tracked into every target view; "
        "imitated features, and the teacher on rendered RGB as teacher_iou_vs_gt; scenes with ground truth only), "
        "and training time of the imitation stage; means over scenes."
        + (
            " text_iou: mask IoU of imitation vs teacher masks for the evaluation's text prompts (text head, SAM 3)."
            if texts
            else ""
        ),
        df,
    )
    return table, caption


BENCHMARK_REQUIRED = ("dataset", "scene", "variant", "teacher", "untrained", "imitation", "iou_vs_gt", "accuracy_vs_gt")


BENCHMARK_FIGURES = (
    "iou_vs_gt",
    "iou_pooled_vs_gt",
    "accuracy_vs_gt",
    "teacher_iou_vs_gt",
    "teacher_accuracy_vs_gt",
    "mesh_surface_iou",
)
"""The scene figures of a benchmark ``metrics.json`` that :func:`load_benchmarks` reads (one column each)."""


def _read_benchmark(p: Path) -> dict:
    return _read_record(p, BENCHMARK_REQUIRED, "benchmark metrics")


TEACHER_KEYS = ("teacher_on_rgb", "teacher_iou_vs_gt", "teacher_accuracy_vs_gt")
"""The teacher-on-RGB baseline's figures (rule ``evaluate_benchmark_teacher``, one per scene)."""


def _with_teacher_baselines(
    records: list[tuple[Path, dict]], teacher_paths: Sequence[str | os.PathLike]
) -> list[tuple[Path, dict]]:
    """Each variant record with the teacher figures of its scene's baseline ``metrics.json`` (rule
    ``evaluate_benchmark_teacher``), the one source of those figures; without a baseline file for
    the scene, the record keeps the copy ``evaluate_benchmark`` made.

    Raises:
        ReportError: an unreadable baseline, or one made with another teacher than the variant's.
    """
    baselines = {}
    for p in map(Path, teacher_paths):
        try:
            t = json.loads(p.read_text())
            baselines[(t["dataset"], t["scene"])] = (p, t)
        except (OSError, json.JSONDecodeError, KeyError) as e:
            raise ReportError(f"{p}: cannot read the teacher baseline ({e})") from e
    out = []
    for p, m in records:
        if (m["dataset"], m["scene"]) in baselines:
            tp, t = baselines[(m["dataset"], m["scene"])]
            if t.get("teacher") != m["teacher"]:
                raise ReportError(f"{tp}: baseline of teacher {t.get('teacher')}, but {p} is of {m['teacher']}")
            m = {**m, **{k: t.get(k) for k in TEACHER_KEYS}}
        out.append((p, m))
    return out


def load_benchmarks(
    paths: Sequence[str | os.PathLike], teacher_paths: Sequence[str | os.PathLike] = ()
) -> pd.DataFrame:
    """One row per benchmark ``metrics.json`` (rule ``evaluate_benchmark``), with the teacher
    figures of ``teacher_paths`` (rule ``evaluate_benchmark_teacher``, per scene) when given.

    Columns: ``dataset, scene, variant, teacher, untrained, iou_vs_gt, iou_pooled_vs_gt,
    accuracy_vs_gt, teacher_iou_vs_gt, teacher_accuracy_vs_gt, mesh_surface_iou, path``.
    """
    rows = []
    for p, m in _with_teacher_baselines([(p, _read_benchmark(p)) for p in map(Path, paths)], teacher_paths):
        rows.append(
            {
                **{k: m[k] for k in ("dataset", "scene", "variant", "teacher")},
                "untrained": bool(m["untrained"]),
                **{k: _num(m.get(k)) for k in BENCHMARK_FIGURES},
                "path": str(p),
            }
        )
    return pd.DataFrame(
        rows, columns=["dataset", "scene", "variant", "teacher", "untrained", *BENCHMARK_FIGURES, "path"]
    )


# benchmark_per_task's per-task figures, in column order; a scene's "mean" row averages them over its tasks
_TASK_FIGURES = (
    "iou",
    "iou_pooled",
    "accuracy",
    "reference_iou",
    "teacher_iou",
    "teacher_iou_pooled",
    "teacher_accuracy",
    "mesh_surface_iou",
)


def benchmark_per_task(
    paths: Sequence[str | os.PathLike], teacher_paths: Sequence[str | os.PathLike] = ()
) -> tuple[pd.DataFrame, str]:
    """The benchmark table: one row per scene, variant and task (teacher figures from
    ``teacher_paths`` when given, as in :func:`load_benchmarks`).

    Returns:
        ``(table, caption)``; columns ``dataset, scene, variant, task, teacher, untrained,
        propagation, reference_view, targets, held_out, iou`` (per-image mean over the target views, "mIoU"),
        ``iou_pooled, accuracy, reference_iou, teacher_iou, teacher_iou_pooled, teacher_accuracy,
        mesh_surface_iou``; then a mean row per scene and variant (``task = "mean"``).
    """
    rows = []
    untrained = set()
    for p, m in _with_teacher_baselines([(p, _read_benchmark(p)) for p in map(Path, paths)], teacher_paths):
        if m["untrained"]:
            untrained.add(m["teacher"])
        teacher_fig = m.get("teacher_on_rgb") or {}
        tasks_t = teacher_fig.get("tasks", {})
        mesh = (m.get("mesh_segmentation") or {}).get("tasks", {})
        scene_rows = []
        for task, t in m["imitation"]["tasks"].items():
            tr = tasks_t.get(task, {})
            scene_rows.append(
                {
                    "dataset": m["dataset"],
                    "scene": m["scene"],
                    "variant": m["variant"],
                    "task": task,
                    "teacher": m["teacher"],
                    "untrained": _yes(m["untrained"]),
                    "propagation": str((m.get("protocol") or {}).get("propagation", "")).split(" ")[0],
                    "reference_view": t.get("reference_view", ""),
                    "targets": int(t["n_views"]),
                    "held_out": int(t["held_out_targets"]),
                    "iou": _num(t["iou_per_image_mean"]),
                    "iou_pooled": _num(t["iou_pooled"]),
                    "accuracy": _num(t["accuracy_per_image_mean"]),
                    "reference_iou": _num(t.get("reference_iou")),
                    "teacher_iou": _num(tr.get("iou_per_image_mean")),
                    "teacher_iou_pooled": _num(tr.get("iou_pooled")),
                    "teacher_accuracy": _num(tr.get("accuracy_per_image_mean")),
                    "mesh_surface_iou": _num((mesh.get(task) or {}).get("surface_iou")),
                }
            )
        rows += scene_rows
        if scene_rows:
            g = pd.DataFrame(scene_rows)
            mean = {c: g[c].mean() for c in _TASK_FIGURES}
            mean["iou_pooled"] = _num(m["imitation"].get("iou_pooled"))
            mean["teacher_iou_pooled"] = _num(teacher_fig.get("iou_pooled"))
            rows.append(
                {
                    **scene_rows[0],
                    "task": "mean",
                    "reference_view": "",
                    "targets": int(g["targets"].sum()),
                    "held_out": int(g["held_out"].sum()),
                    **mean,
                }
            )
    columns = [
        "dataset",
        "scene",
        "variant",
        "task",
        "teacher",
        "untrained",
        "propagation",
        "reference_view",
        "targets",
        "held_out",
        *_TASK_FIGURES,
    ]
    table = pd.DataFrame(rows, columns=columns)
    note = UNTRAINED_NOTE.format(names=", ".join(sorted(untrained))) if untrained else ""
    caption = (
        "Segmentation against ground-truth masks, per scene, variant and task: one prompt in the reference view, tracked in 3D "
        "into every target view (propagation chain: each visited view's mask adds prompt points; click: the prompt alone); iou = mean over target views of the per-view IoU (mIoU), iou_pooled = summed intersections over "
        "summed unions, accuracy = mean pixel accuracy; held_out = target views held out of NeRF and imitation training; "
        "teacher_* = the teacher on rendered RGB with the same tracked prompts; mesh_surface_iou = the imitation masks of 3 views "
        "voted onto the extracted mesh, sampled surface IoU against the ground-truth object mesh. Mean rows: means over tasks "
        "(iou_pooled pooled over every task and view)." + (f" {note}" if note else "")
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


def write_table(
    table: pd.DataFrame,
    caption: str,
    stem: str | os.PathLike,
    label: str | None = None,
    paths: Sequence[str | os.PathLike] | None = None,
) -> list[Path]:
    """Write ``stem.csv``, ``stem.md`` and ``stem.tex`` atomically (or the three ``paths``, in
    that order); returns the three paths."""
    stem = Path(stem)
    label = label or f"tab:{stem.name}"
    exts = (".csv", ".md", ".tex")
    csv_path, md_path, tex_path = (
        (Path(p) for p in paths) if paths is not None else (stem.with_name(stem.name + ext) for ext in exts)
    )
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
