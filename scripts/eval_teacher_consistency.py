"""3D-consistency ceiling of a teacher's feature maps on a scene with exact depth (the demo scene).

Encodes every view of the scene folder with the teacher at the pipeline's protocol (longest side
``--render-size``, uint8, ``Teacher.encode``), then per map (:mod:`san.evaluation.consistency`):

* pairs: every held-out view (every ``--test-every``-th, the pipeline's split) with its
  ``--neighbours`` nearest views by camera centre: cosine of A's features with B's features warped
  through the ground-truth depth, raw and mean-centred, beside the same-cell and shuffled baselines;
* consensus ceiling: every held-out view against the mean of the warped features of all training
  views that see each point: the best held-out cosine a 3D-consistent field trained on those views
  could reach on those cells (compare with the imitation bar, 0.85).

Writes ``{out_dir}/{teacher}.json`` and ``{out_dir}/{teacher}.md``.

    PYTHONPATH=$PWD nice -n 19 python scripts/eval_teacher_consistency.py \
        --scene results/demo/demo/scene --teacher sam3_untrained_small \
        --out-dir benchmarks/results/teacher_consistency
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from san.evaluation.consistency import (
    DEPTH_TOL,
    EDGE_TOL,
    consensus_consistency,
    encode_depth_view,
    image_feature_view,
    load_depth_views,
    nearest_views,
    pair_consistency,
    pooled,
)
from san.imitation.quality import BARS
from san.teachers import build_teacher
from san.utils.io import atomic_write_json, atomic_write_text

PAIR_KEYS = ("cosine_warp", "cosine_warp_centred", "cosine_same_cell", "cosine_same_cell_centred")
PAIR_KEYS += ("cosine_shuffled", "cosine_shuffled_centred")


def _progress(t0: float, what: str) -> None:
    print(
        f"[{time.perf_counter() - t0:7.1f} s wall, {time.process_time():7.1f} s cpu] {what}",
        file=sys.stderr,
        flush=True,
    )


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def markdown(record: dict) -> str:
    """The per-map table of a record written by :func:`main`."""
    bar = record["bar_cosine_test"]
    lines = [
        f"# 3D-consistency ceiling: `{record['teacher']}` ({record['teacher_label']})",
        "",
        f"Scene `{record['scene']}`, render size {record['render_size']} px, {record['pairs']} pairs "
        f"({len(record['anchors'])} held-out views x {record['neighbours']} nearest), consensus over "
        f"{record['consensus_views']} training views; depth tolerance {record['depth_tol']:.0%}, edge tolerance "
        f"{record['edge_tol']:.0%}. Teacher SHA-256: `{record['teacher_sha256']}`. "
        "Produced by `scripts/eval_teacher_consistency.py`.",
        "",
        "| map | shape | pair cells | warp | warp centred | same cell | same cell centred | shuffled "
        "| shuffled centred | consensus cells (views) | **consensus ceiling** | unit consensus | consensus centred "
        f"| ceiling >= {bar} |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in record["per_map"]:
        p, c = m["pairs"], m["consensus"]
        ceiling = max(c["cosine"], c["cosine_unit"]) if c["cosine"] is not None else None
        verdict = "-" if ceiling is None else ("yes" if ceiling >= bar else "**no**")
        lines.append(
            f"| {m['map']} | {'x'.join(str(s) for s in m['shape'])} | {p['cells']} | "
            + " | ".join(_fmt(p[k]) for k in PAIR_KEYS)
            + f" | {c['cells']} ({_fmt(c['mean_views'])}) | **{_fmt(c['cosine'])}** | {_fmt(c['cosine_unit'])}"
            + f" | {_fmt(c['cosine_centred'])} | {verdict} |"
        )
    lines += [
        "",
        "Reference (the image the teacher saw, RGB + a constant channel, area-pooled onto each map's cells: "
        "3D-consistent up to shading and sampling; what the warp itself keeps):",
        "",
        "| map | warp | warp centred | same cell | same cell centred | shuffled centred | consensus | consensus centred |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in record["per_map"]:
        p, c = m["image_reference"]["pairs"], m["image_reference"]["consensus"]
        keys = ("cosine_warp", "cosine_warp_centred", "cosine_same_cell", "cosine_same_cell_centred")
        lines.append(
            f"| {m['map']} | "
            + " | ".join(_fmt(p[k]) for k in (*keys, "cosine_shuffled_centred"))
            + f" | {_fmt(c['cosine'])} | {_fmt(c['cosine_centred'])} |"
        )
    lines += [
        "",
        "warp: cosine of A's feature with B's feature at the same 3D point (ground-truth depth); same cell: B's "
        "feature at A's cell index (no warp); shuffled: a random valid cell of B; centred: each view's mean "
        "feature subtracted first. Consensus: A against the mean over all training views that see the point "
        "(what a least-squares 3D field converges to; unit: the mean of unit features, a cosine-trained field; "
        f"the last column compares the larger of the two with the bar {bar}). "
        "Means over matched cells (cells on depth edges and occluded points excluded).",
        "",
    ]
    return "\n".join(lines)


def _shown_path(path) -> str | None:
    """``path`` relative to the working directory when it lies below it (the repository root in the
    documented commands), so that recorded files name no machine's absolute paths."""
    if path is None:
        return None
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scene", required=True, help="scene folder: images/, sparse/0/, depth/*.npy (distance along ray)")
    p.add_argument("--teacher", required=True, help="teacher registry name")
    p.add_argument("--teacher-checkpoint", default=None)
    p.add_argument(
        "--render-size", type=int, default=128, help="longest side the teacher sees (config features.render_size)"
    )
    p.add_argument("--test-every", type=int, default=8, help="held-out views: every n-th by name (poses.test_every)")
    p.add_argument("--neighbours", type=int, default=2, help="nearest views per held-out view for the pairs")
    p.add_argument("--min-views", type=int, default=2, help="consensus: views that must see a point")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffled baseline")
    p.add_argument("--depth-tol", type=float, default=DEPTH_TOL)
    p.add_argument("--edge-tol", type=float, default=EDGE_TOL)
    p.add_argument("--out-dir", required=True)
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    views = load_depth_views(args.scene, args.test_every)
    teacher = build_teacher(args.teacher, args.teacher_checkpoint, "cpu")
    info = teacher.info
    _progress(t0, f"{len(views)} views loaded, teacher {info.name} built")
    encoded = []
    for v in views:
        encoded.append(encode_depth_view(teacher, v, args.render_size))
        if len(encoded) % 8 == 0:
            _progress(t0, f"encoded {len(encoded)}/{len(views)}")
    encode_s = time.perf_counter() - t0

    reference = [image_feature_view(e) for e in encoded]
    anchors = [i for i, v in enumerate(views) if v.split == "test"]
    train = [i for i, v in enumerate(views) if v.split == "train"]
    tols = (args.depth_tol, args.edge_tol)
    rows = {"teacher": ([], []), "image": ([], [])}
    pairs = []
    for a in anchors:
        for b in nearest_views(views, a, args.neighbours):
            pairs.append([views[a].name, views[b].name])
            for key, fv in (("teacher", encoded), ("image", reference)):
                rows[key][0].append(pair_consistency(fv[a], fv[b], args.seed + len(pairs), *tols))
        for key, fv in (("teacher", encoded), ("image", reference)):
            rows[key][1].append(consensus_consistency(fv[a], [fv[j] for j in train], args.min_views, *tols))
        _progress(t0, f"held-out view {views[a].name} done")

    def summary(pair_rows, consensus_rows, i):
        rows_p = [r[i] for r in pair_rows]
        rows_c = [r[i] for r in consensus_rows]
        return {
            "pairs": {"cells": sum(r["cells"] for r in rows_p)} | {k: pooled(rows_p, k) for k in PAIR_KEYS},
            "consensus": {
                "cells": sum(r["cells"] for r in rows_c),
                "mean_views": pooled(rows_c, "mean_views"),
                "cosine": pooled(rows_c, "cosine"),
                "cosine_unit": pooled(rows_c, "cosine_unit"),
                "cosine_centred": pooled(rows_c, "cosine_centred"),
            },
        }

    per_map = [
        {"map": i, "shape": list(shape)}
        | summary(*rows["teacher"], i)
        | {"image_reference": summary(*rows["image"], i)}
        for i, shape in enumerate(info.feature_shapes)
    ]
    pair_rows, consensus_rows = rows["teacher"]
    record = {
        "teacher": info.name,
        "teacher_label": info.label,
        "untrained": info.untrained,
        "teacher_checkpoint": _shown_path(info.checkpoint),
        "teacher_sha256": info.checkpoint_sha256,
        "input_size": info.input_size,
        "scene": _shown_path(args.scene),
        "render_size": args.render_size,
        "views": len(views),
        "anchors": [views[a].name for a in anchors],
        "neighbours": args.neighbours,
        "pairs": len(pairs),
        "pair_names": pairs,
        "consensus_views": len(train),
        "min_views": args.min_views,
        "depth_tol": args.depth_tol,
        "edge_tol": args.edge_tol,
        "seed": args.seed,
        "bar_cosine_test": BARS["cosine_test"],
        "per_map": per_map,
        "per_pair": [{"pair": n, "maps": r} for n, r in zip(pairs, pair_rows)],
        "per_anchor": [{"view": views[a].name, "maps": r} for a, r in zip(anchors, consensus_rows)],
        "seconds": {"encode": encode_s, "total": time.perf_counter() - t0},
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
    }
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{info.name}.json", record)
    atomic_write_text(out / f"{info.name}.md", markdown(record))
    print(json.dumps([{"map": m["map"], "consensus": m["consensus"]["cosine"]} for m in per_map]))
    return record


if __name__ == "__main__":
    main()
