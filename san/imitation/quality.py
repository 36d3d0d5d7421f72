"""How well the imitated features match the teacher's: per-pixel cosine similarity and MSE.

The teacher sees the NeRF's own rendering of a view (as during training, quantised to uint8);
:func:`render_features` renders the imitation for the same camera; both are compared on the
valid (image-covering) cells of every map. Bars of the project (``sam_untrained_tiny``): mean
cosine >= 0.85 on held-out views and >= 0.9 on training views, feature MSE >= 5x lower than at
initialisation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from san.cameras import Camera
from san.imitation.geometry import feature_camera
from san.imitation.model import ImitationModel
from san.imitation.render import render_features
from san.models.base import RadianceModel
from san.teachers.base import Teacher

BARS = {"cosine_test": 0.85, "cosine_train": 0.9, "mse_drop": 5.0}


@dataclass(frozen=True)
class TeacherView:
    """A camera with the teacher's features of the NeRF's rendering from it.

    Attributes:
        camera: the rendered camera (its ``K``, ``width``, ``height`` are those of the rendering).
        features: per map ``Cxhxw`` float32 (CPU), the whole padded map.
        name: label for the report (for example ``test/3``).
    """

    camera: Camera
    features: list[torch.Tensor]
    name: str


@torch.no_grad()
def teacher_views(
    nerf: RadianceModel, teacher: Teacher, cameras: Sequence[Camera], names: Sequence[str]
) -> list[TeacherView]:
    """Render each camera with ``nerf.render_camera`` and encode it with the teacher."""
    views = []
    for cam, name in zip(cameras, names):
        out = nerf.render_camera(cam)
        rgb = out["rgb"]
        image = ((rgb.detach().float().cpu().clamp(0, 1) * 255).round() / 255).permute(2, 0, 1)[None]
        maps = teacher.encode(image)
        views.append(TeacherView(cam, [m[0].float().cpu() for m in maps], name))
    return views


@torch.no_grad()
def feature_quality(
    nerf: RadianceModel,
    model: ImitationModel,
    views: Sequence[TeacherView],
    mesh: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Per view and mean: cosine similarity and MSE (per element) on the valid cells of each map.

    Returns:
        ``{"cosine": mean over views and maps, "mse": mean, "per_map": [{"cosine", "mse"}] (mean over
        views, per map), "per_view": [...], "seconds": ...}``; with several maps also
        ``"cross_scale_mse"`` (:func:`cross_scale_error`, mean over views).
    """
    t0 = time.perf_counter()
    rows = []
    for v in views:
        cam = v.camera
        pred = render_features(nerf, model, cam.c2w, cam.K, cam.width, cam.height, mesh=mesh)
        row = {"view": v.name, "maps": []}
        cells_pred, cells_teacher = [], []
        for p, t in zip(pred, v.features):
            vh, vw = feature_camera(cam.K, cam.width, cam.height, model.input_size, t.shape[1:]).valid_hw
            a = p[:, :vh, :vw].reshape(p.shape[0], -1).T.cpu()
            b = t[:, :vh, :vw].reshape(t.shape[0], -1).T
            cos = torch.nn.functional.cosine_similarity(a, b, dim=1)
            row["maps"].append(
                {"cosine": float(cos.mean()), "mse": float(((a - b) ** 2).mean()), "cells": int(a.shape[0])}
            )
            cells_pred.append(a)
            cells_teacher.append(b)
        if len(pred) > 1:
            row["cross_scale_mse"] = cross_scale_error(cells_pred, cells_teacher)
        row["cosine"] = float(np.mean([m["cosine"] for m in row["maps"]]))
        row["mse"] = float(np.mean([m["mse"] for m in row["maps"]]))
        rows.append(row)
    n_maps = len(rows[0]["maps"]) if rows else 0
    out = {
        "cosine": float(np.mean([r["cosine"] for r in rows])) if rows else None,  # strict JSON: null, never NaN
        "mse": float(np.mean([r["mse"] for r in rows])) if rows else None,  # strict JSON: null, never NaN
        "per_map": [
            {
                "cosine": float(np.mean([r["maps"][i]["cosine"] for r in rows])),
                "mse": float(np.mean([r["maps"][i]["mse"] for r in rows])),
            }
            for i in range(n_maps)
        ],
        "views": len(rows),
        "per_view": rows,
        "seconds": time.perf_counter() - t0,
    }
    if n_maps > 1:
        out["cross_scale_mse"] = float(np.mean([r["cross_scale_mse"] for r in rows]))
    return out


CROSS_SCALE_CELLS = 1024
"""Cells drawn per map (seeded) for :func:`cross_scale_error`."""


def cross_scale_error(preds: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], seed: int = 0) -> float:
    """How far the imitation's cross-scale similarity structure is from the teacher's: the mean
    over map pairs ``i < j`` of ``MSE(S_hat_ij, S_ij)`` (paper Eq. 11's term, :func:`similarity_map`)
    on at most :data:`CROSS_SCALE_CELLS` seeded cells per map. The number the correlation loss
    (and the ``no_corr`` ablation) should move.

    Args:
        preds, targets: per map ``s_i x C_i`` imitated / teacher features of the same cells.
    """
    from san.imitation.losses import similarity_map

    g = torch.Generator().manual_seed(seed)
    picks = [torch.randperm(p.shape[0], generator=g)[:CROSS_SCALE_CELLS] for p in preds]
    errors = []
    for i in range(len(preds)):
        for j in range(i + 1, len(preds)):
            s_hat = similarity_map(preds[i][picks[i]].float(), preds[j][picks[j]].float())
            s = similarity_map(targets[i][picks[i]].float(), targets[j][picks[j]].float())
            errors.append(float(((s_hat - s) ** 2).mean()))
    return float(np.mean(errors))


def evenly_spaced(items: Sequence[Any], n: int) -> list[int]:
    """Indices of ``n`` items spread over ``items`` (all when ``n >= len(items)``)."""
    if n <= 0 or not items:
        return []
    if n >= len(items):
        return list(range(len(items)))
    return sorted({int(round(i)) for i in np.linspace(0, len(items) - 1, n)})


def summarize(before: dict[str, dict] | None, after: dict[str, dict], untrained_teacher: bool) -> dict[str, Any]:
    """Quality record: ``after[split]`` (and ``before[split]``) for ``split`` in ``train``/``test``,
    the MSE drop and which bars pass."""
    out: dict[str, Any] = {"after": after, "bars": dict(BARS), "untrained_teacher": untrained_teacher}
    passed = {}
    if "test" in after and after["test"]["views"]:
        passed["cosine_test"] = after["test"]["cosine"] >= BARS["cosine_test"]
    if "train" in after and after["train"]["views"]:
        passed["cosine_train"] = after["train"]["cosine"] >= BARS["cosine_train"]
    if before is not None:
        out["before"] = before
        split = "test" if "test" in after and after["test"]["views"] else "train"
        drop = before[split]["mse"] / max(after[split]["mse"], 1e-12)
        out["mse_drop"] = drop
        out["mse_drop_split"] = split
        passed["mse_drop"] = drop >= BARS["mse_drop"]
    out["passed"] = passed
    return out
