"""Chamfer distance between surfaces, and the ground-truth check of an extracted mesh.

Definition used everywhere in ``san`` (L1, symmetric mean):

* ``n`` points are sampled uniformly by area on each surface (fixed seed, so repeatable);
* ``a_to_b`` is the mean Euclidean distance from each sample of ``a`` to the nearest sample of
  ``b`` (``scipy.spatial.cKDTree``), ``b_to_a`` the reverse;
* ``symmetric = (a_to_b + b_to_a) / 2``.

Distances are in the meshes' units. Sample-to-sample distances overestimate point-to-surface
distances by about the sample spacing (``sqrt(area / n)``), so ``n`` must be large enough for
that to be small against the number being measured (the ``cpu`` preset: 1e5 samples).

**Comparison region.** An extracted scene mesh holds more than any ground truth (background,
ground far away, the sky); ground truth may hold surfaces no camera sees. Both are therefore
cropped to the same axis-aligned *region of interest* before sampling: only surface inside the box
counts (samples outside the box are rejected, so a face straddling the box edge contributes exactly
its inside part). For the demo scene the region is ``region_of_interest`` of
``scene_gt.json`` (the objects' bounding box grown by a margin, from just below the ground), and
the distance is reported as a fraction of that box's diagonal.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import trimesh
from scipy.spatial import cKDTree


def _as_box(box) -> np.ndarray | None:
    if box is None:
        return None
    box = np.asarray(box, dtype=np.float64)
    if box.shape != (2, 3) or not np.all(box[1] > box[0]):
        raise ValueError(f"region must be [[min x, y, z], [max x, y, z]] with max > min, got {box.tolist()}")
    return box


def in_box(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    """``N`` bool: which of the ``Nx3`` points lie inside the ``2x3`` box (boundary included)."""
    return np.all((points >= box[0]) & (points <= box[1]), axis=1)


def _overlaps(tri: np.ndarray, box: np.ndarray) -> np.ndarray:
    """``F`` bool: does each triangle's (``Fx3x3``) bounding box overlap ``box``?"""
    return np.all((tri.min(axis=1) <= box[1]) & (tri.max(axis=1) >= box[0]), axis=1)


def _area(tri: np.ndarray) -> float:
    """Total area of ``Fx3x3`` triangles."""
    return float(0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum())


def _split4(tri: np.ndarray) -> np.ndarray:
    """Midpoint subdivision: ``Fx3x3`` triangles -> ``4Fx3x3``."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    ab, bc, ca = (a + b) / 2, (b + c) / 2, (c + a) / 2
    return np.concatenate([np.stack(t, axis=1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])


def crop_to_box(mesh: trimesh.Trimesh, box, max_levels: int = 10, straddle_fraction: float = 0.05) -> trimesh.Trimesh:
    """A triangle soup covering the part of ``mesh`` inside ``box`` (a superset of it).

    Faces whose bounds miss the box are dropped; faces straddling the box's boundary are split at
    their edge midpoints (children missing the box dropped) until the straddling faces hold at most
    ``straddle_fraction`` of the area, so that little of the soup lies outside the box even for
    huge faces (a ground disk). :func:`sample_surface_in_box` then cuts it exactly by rejection.
    """
    box = _as_box(box)
    tri = np.asarray(mesh.triangles, dtype=np.float64)
    tri = tri[_overlaps(tri, box)]
    done = [tri[:0]]
    for _ in range(max_levels):
        inside = np.all(in_box(tri.reshape(-1, 3), box).reshape(-1, 3), axis=1)
        done.append(tri[inside])
        tri = tri[~inside]
        if len(tri) == 0 or _area(tri) <= straddle_fraction * (_area(tri) + sum(_area(d) for d in done)):
            break
        tri = _split4(tri)
        tri = tri[_overlaps(tri, box)]
    tri = np.concatenate([*done, tri])
    return trimesh.Trimesh(tri.reshape(-1, 3), np.arange(3 * len(tri)).reshape(-1, 3), process=False)


def sample_surface_in_box(
    mesh: trimesh.Trimesh, n_samples: int, box=None, seed: int = 0, max_factor: int = 100
) -> np.ndarray:
    """``n_samples`` points (``Nx3``) uniform by area on the part of the surface inside ``box``.

    Rejection sampling: the faces overlapping the box are sampled and samples outside the box are
    dropped; while too few remain (large faces reaching far out, such as a ground disk), further
    draws are sized by the measured acceptance rate (at most ``max_factor * n_samples`` points in
    all). An empty result (no surface in the box) is a ``ValueError``.
    """
    box = _as_box(box)
    part = mesh if box is None else crop_to_box(mesh, box)
    if len(part.faces) == 0 or part.area <= 0:
        raise ValueError(f"no surface to sample{'' if box is None else f' inside region {box.tolist()}'}")
    n_samples = int(n_samples)
    points = np.asarray(trimesh.sample.sample_surface(part, n_samples, seed=seed)[0], dtype=np.float64)
    if box is None:
        return points
    points = [points[in_box(points, box)]]
    have, drawn, draw = len(points[0]), n_samples, 1
    while 0 < have < n_samples and drawn < max_factor * n_samples:
        count = min(int(np.ceil(1.25 * (n_samples - have) * drawn / have)) + 16, max_factor * n_samples - drawn)
        more = np.asarray(trimesh.sample.sample_surface(part, count, seed=seed + 7919 * draw)[0], dtype=np.float64)
        points.append(more[in_box(more, box)])
        have, drawn, draw = have + len(points[-1]), drawn + count, draw + 1
    points = np.concatenate(points)[:n_samples]
    if len(points) == 0:
        raise ValueError(f"no surface samples inside region {box.tolist()}")
    return points


def chamfer_points(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Chamfer distance between point sets ``a`` (``Nx3``) and ``b`` (``Mx3``), see module docstring."""
    d_ab, _ = cKDTree(b).query(a, workers=1)
    d_ba, _ = cKDTree(a).query(b, workers=1)
    a_to_b, b_to_a = float(np.mean(d_ab)), float(np.mean(d_ba))
    return {"symmetric": 0.5 * (a_to_b + b_to_a), "a_to_b": a_to_b, "b_to_a": b_to_a}


def _chamfer_record(d: dict, diag: float, bar: float) -> dict:
    """The report's Chamfer figures from :func:`chamfer_points`' ``d``: the three distances (scene
    units), their symmetric part as a fraction of the box diagonal ``diag``, and whether that
    fraction is within ``bar``."""
    fraction = d["symmetric"] / diag
    return {
        "chamfer_symmetric": d["symmetric"],
        "chamfer_mesh_to_gt": d["a_to_b"],
        "chamfer_gt_to_mesh": d["b_to_a"],
        "chamfer_fraction": fraction,
        "bbox_diag": float(diag),
        "bar": float(bar),
        "passed": bool(fraction <= bar),
    }


def chamfer_distance(
    mesh_a: trimesh.Trimesh, mesh_b: trimesh.Trimesh, n_samples: int = 100_000, region=None, seed: int = 0
) -> dict[str, float]:
    """Symmetric Chamfer distance between two surfaces by sampling (see module docstring).

    Args:
        mesh_a, mesh_b: the surfaces (same units / frame).
        n_samples: samples per surface (before cropping).
        region: optional ``2x3`` box; only surface inside it counts.
        seed: sampling seed (``mesh_b`` uses ``seed + 1``).

    Returns:
        ``{"symmetric", "a_to_b", "b_to_a", "n_a", "n_b"}``.
    """
    pa = sample_surface_in_box(mesh_a, n_samples, region, seed)
    pb = sample_surface_in_box(mesh_b, n_samples, region, seed + 1)
    return {**chamfer_points(pa, pb), "n_a": int(len(pa)), "n_b": int(len(pb))}


@dataclass(frozen=True)
class DepthView:
    """One ground-truth view for the visibility test: OpenCV ``c2w 4x4``, ``K 3x3`` and the
    ``HxW`` distance along each pixel-centre ray (:mod:`san.cameras` conventions)."""

    c2w: np.ndarray
    K: np.ndarray
    depth: np.ndarray


def visible_in_depth_views(points: np.ndarray, views: Sequence[DepthView], rel_tol: float = 0.02) -> np.ndarray:
    """``N`` bool: is each ``Nx3`` point seen by at least one view?

    A point is seen when it projects inside the image, in front of the camera, and its distance
    from the camera centre matches the view's depth at that pixel within ``rel_tol * depth`` (the
    tolerance absorbs the depth change across one pixel on slanted surfaces).
    """
    points = np.asarray(points, dtype=np.float64)
    seen = np.zeros(len(points), dtype=bool)
    for v in views:
        w2c = np.linalg.inv(np.asarray(v.c2w, dtype=np.float64))
        cam = points @ w2c[:3, :3].T + w2c[:3, 3]
        z = cam[:, 2]
        front = z > 1e-9
        safe_z = np.where(front, z, 1.0)
        u = v.K[0, 0] * cam[:, 0] / safe_z + v.K[0, 2]
        y = v.K[1, 1] * cam[:, 1] / safe_z + v.K[1, 2]
        h, w = v.depth.shape
        ok = front & (u >= 0) & (u < w) & (y >= 0) & (y < h)
        ui, yi = np.clip(u.astype(np.int64), 0, w - 1), np.clip(y.astype(np.int64), 0, h - 1)
        ref = v.depth[yi, ui].astype(np.float64)
        dist = np.linalg.norm(cam, axis=1)
        seen |= ok & (np.abs(dist - ref) <= rel_tol * ref)
    return seen


def box_diagonal(box) -> float:
    box = _as_box(box)
    return float(np.linalg.norm(box[1] - box[0]))


def evaluate_against_ground_truth(
    mesh: trimesh.Trimesh,
    gt_meshes: Sequence[trimesh.Trimesh],
    bbox_diag: float,
    region=None,
    n_samples: int = 100_000,
    bar: float = 0.02,
    seed: int = 0,
    gt_views: Sequence[DepthView] = (),
) -> dict:
    """Chamfer distance of ``mesh`` to the union of ``gt_meshes``, relative to ``bbox_diag``.

    Args:
        mesh: extracted mesh, in the ground truth's frame (the capture's / input frame).
        gt_meshes: ground-truth surfaces (objects and ground).
        bbox_diag: the scene's bounding-box diagonal (the demo: region of interest diagonal).
        region: ``2x3`` comparison box (both meshes cropped to it); ``None`` compares everything.
        n_samples: samples per surface.
        bar: pass when ``symmetric / bbox_diag <= bar``.
        gt_views: ground-truth depth views; when given, ground-truth samples seen by none of them
            are dropped (:func:`visible_in_depth_views`): hidden surfaces such as the ground under
            an object or a box's bottom face cannot be recovered from images and are not counted.

    Returns:
        ``{"chamfer_symmetric", "chamfer_mesh_to_gt", "chamfer_gt_to_mesh", "chamfer_fraction",
        "bbox_diag", "bar", "passed", "region", "n_samples_mesh", "n_samples_gt", "gt_visible_fraction"}``
        (distances in the meshes' units; ``chamfer_fraction`` = symmetric / ``bbox_diag``;
        ``gt_visible_fraction`` is the share of ground-truth samples kept by the visibility test).
    """
    if not gt_meshes:
        raise ValueError("evaluate_against_ground_truth: no ground-truth meshes given")
    if not bbox_diag > 0:
        raise ValueError(f"evaluate_against_ground_truth: bbox_diag must be positive, got {bbox_diag}")
    gt = trimesh.util.concatenate([trimesh.Trimesh(m.vertices, m.faces, process=False) for m in gt_meshes])
    pa = sample_surface_in_box(mesh, n_samples, region, seed)
    pb = sample_surface_in_box(gt, n_samples, region, seed + 1)
    n_gt = len(pb)
    if gt_views:
        pb = pb[visible_in_depth_views(pb, gt_views)]
        if len(pb) == 0:
            raise ValueError("no ground-truth sample inside the region is seen by the ground-truth views")
    d = {**chamfer_points(pa, pb), "n_a": int(len(pa)), "n_b": int(len(pb))}
    return {
        **_chamfer_record(d, bbox_diag, bar),
        "region": None if region is None else _as_box(region).tolist(),
        "n_samples_mesh": d["n_a"],
        "n_samples_gt": d["n_b"],
        "gt_visible_fraction": d["n_b"] / n_gt,
    }


@dataclass(frozen=True)
class GroundTruth:
    """Ground-truth surfaces of a synthetic scene, in its input frame.

    Attributes:
        meshes: one mesh per surface (objects, ground).
        names: file stem of each mesh.
        region: ``2x3`` comparison box ``[min, max]``.
        bbox_diag: diagonal of ``region``.
        views: ground-truth depth views for the visibility test (empty when the folder has none).
    """

    meshes: tuple[trimesh.Trimesh, ...]
    names: tuple[str, ...]
    region: np.ndarray
    bbox_diag: float
    views: tuple[DepthView, ...] = ()


def load_ground_truth(folder: str | os.PathLike) -> GroundTruth:
    """Read a synthetic scene's ground truth: ``folder/scene_gt.json`` (its ``region_of_interest``
    ``2x3`` box) and every ``folder/meshes/*.ply``; when ``scene_gt.json`` lists ``cameras``
    (``K`` and ``views`` with ``image`` and ``c2w``) and ``folder/depth/{image stem}.npy`` exist, they
    become the visibility views (the demo scene's layout, :mod:`san.data.demo.write`). Errors name
    the missing or bad file."""
    folder = Path(folder)
    gt_json = folder / "scene_gt.json"
    try:
        info = json.loads(gt_json.read_text())
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"{gt_json}: no ground-truth description (expected the demo scene's scene_gt.json)"
        ) from e
    except json.JSONDecodeError as e:
        raise ValueError(f"{gt_json}: not valid JSON ({e})") from e
    if "region_of_interest" not in info:
        raise ValueError(f"{gt_json}: no 'region_of_interest' box (keys: {sorted(info)})")
    try:
        region = _as_box(info["region_of_interest"])
    except ValueError as e:
        raise ValueError(f"{gt_json}: region_of_interest: {e}") from e
    paths = sorted((folder / "meshes").glob("*.ply"))
    if not paths:
        raise FileNotFoundError(f"{folder / 'meshes'}: no ground-truth *.ply meshes")
    meshes = []
    for p in paths:
        m = trimesh.load(p, force="mesh", process=False)
        if not isinstance(m, trimesh.Trimesh) or len(m.faces) == 0:
            raise ValueError(f"{p}: not a triangle mesh with faces")
        meshes.append(m)
    return GroundTruth(
        tuple(meshes), tuple(p.stem for p in paths), region, box_diagonal(region), _depth_views(folder, info)
    )


def _depth_views(folder: Path, info: dict) -> tuple[DepthView, ...]:
    cams = info.get("cameras") or {}
    views = []
    for v in cams.get("views", []):
        path = folder / "depth" / f"{Path(v['image']).stem}.npy"
        if not path.is_file():
            continue
        depth = np.load(path)
        if depth.ndim != 2:
            raise ValueError(f"{path}: expected an HxW depth map, got shape {depth.shape}")
        views.append(
            DepthView(
                np.asarray(v["c2w"], dtype=np.float64), np.asarray(v.get("K", cams.get("K")), dtype=np.float64), depth
            )
        )
    return tuple(views)


def seen_by_cameras(points: np.ndarray, cameras: Sequence, min_count: int) -> np.ndarray:
    """``N`` bool: does each ``Nx3`` point project inside the image of at least ``min_count`` of
    ``cameras`` (``c2w``, ``K``, ``width``, ``height``; in front of the camera, occlusion not tested)?"""
    points = np.asarray(points, dtype=np.float64)
    count = np.zeros(len(points), dtype=np.int64)
    for cam in cameras:
        w2c = np.linalg.inv(np.asarray(cam.c2w, dtype=np.float64))
        p = points @ w2c[:3, :3].T + w2c[:3, 3]
        z = p[:, 2]
        safe = np.where(z > 1e-9, z, 1.0)
        K = np.asarray(cam.K, dtype=np.float64)
        u, v = K[0, 0] * p[:, 0] / safe + K[0, 2], K[1, 1] * p[:, 1] / safe + K[1, 2]
        count += (z > 1e-9) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
    return count >= min_count


def evaluate_scene_against_ground_truth(
    mesh: trimesh.Trimesh,
    gt_meshes: Sequence[trimesh.Trimesh],
    cameras: Sequence,
    view_fraction: float = 0.25,
    n_samples: int = 100_000,
    bar: float = 0.02,
    seed: int = 0,
    gt_views: Sequence[DepthView] = (),
) -> dict:
    """Chamfer distance of a whole scene mesh to the whole ground truth (ground included) inside
    the cameras' view.

    The comparison region is what the training ``cameras`` see: surface points (of both meshes)
    that project into the images of at least ``view_fraction`` of them (:func:`seen_by_cameras`,
    the same rule as ``mesh.region: cameras``); ground-truth points hidden from every ``gt_views``
    depth view are dropped as well (:func:`visible_in_depth_views`). The distance is relative to the
    diagonal of the bounding box of the ground-truth points kept.

    Args:
        mesh: extracted mesh in the ground truth's (input) frame.
        gt_meshes: every ground-truth surface (objects and ground).
        cameras: training cameras in the same frame (``c2w, K, width, height``).

    Returns:
        The fields of :func:`evaluate_against_ground_truth` (``region`` is the box of the kept
        ground-truth points) plus ``view_fraction`` and ``mesh_in_view_fraction`` (share of the mesh
        samples inside the cameras' view).
    """
    if not gt_meshes:
        raise ValueError("evaluate_scene_against_ground_truth: no ground-truth meshes given")
    need = max(1, int(np.ceil(view_fraction * len(cameras))))
    gt = trimesh.util.concatenate([trimesh.Trimesh(m.vertices, m.faces, process=False) for m in gt_meshes])
    pa = sample_surface_in_box(mesh, n_samples, None, seed)
    pb = sample_surface_in_box(gt, 4 * n_samples, None, seed + 1)
    in_a = seen_by_cameras(pa, cameras, need)
    keep_b = seen_by_cameras(pb, cameras, need)
    if gt_views:
        keep_b &= visible_in_depth_views(pb, gt_views)
    pa_in, pb_in = pa[in_a], pb[keep_b][:n_samples]
    if len(pa_in) == 0 or len(pb_in) == 0:
        raise ValueError("evaluate_scene_against_ground_truth: no mesh or ground-truth sample inside the cameras' view")
    region = np.stack([pb_in.min(axis=0), pb_in.max(axis=0)])
    diag = float(np.linalg.norm(region[1] - region[0]))
    return {
        **_chamfer_record(chamfer_points(pa_in, pb_in), diag, bar),
        "region": region.tolist(),
        "view_fraction": float(view_fraction),
        "n_samples_mesh": int(len(pa_in)),
        "n_samples_gt": int(len(pb_in)),
        "mesh_in_view_fraction": float(in_a.mean()),
    }
