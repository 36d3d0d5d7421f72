"""Scene-mesh cleaning: keep the region the training cameras look at, drop floaters and small pieces.

Rules (applied by :func:`san.mesh.extract.extract_mesh_with_stats` after the visibility step and
before decimation; every number is a ``mesh:`` config key, :class:`~san.mesh.config.MeshConfig`):

* **Region** (``region``):

  - ``cameras`` (default): a face is kept when its centre lies in the image of at least
    ``region_view_fraction`` of the training cameras (in front of the camera, inside the image;
    occlusion is not tested). Every camera sees the part of the scene it was pointed at, so the
    surface seen by many cameras at once is the captured region; a floor running to the horizon is
    seen by few cameras at a time (for an orbit, only the ones on the far side) and is cut where
    fewer than that share of cameras see it. For forward-facing captures every camera sees nearly
    the same region, so the rule keeps what most views share.
  - ``box``: a face is kept when its centre lies in ``region_box`` (``[[min x, y, z], [max x, y,
    z]]``, in the capture's *input* frame, the frame of the source poses and of ``mesh.ply``).
  - ``none``: no cut.

* **Pieces** (``min_piece_area_fraction``): after the region cut, connected components (faces
  sharing a vertex) whose area is below this fraction of the total area are removed; floaters are
  small disconnected pieces. Reported: the piece count and how many pieces hold more than 1 % of
  the area (``pieces``, ``pieces_over_1pct``).

* **Hole closing** (:func:`close_holes`, ``close_holes``, off by default): boundary loops whose
  bounding-box diagonal is at most ``max_hole_fraction`` of the mesh's are closed by a fan of
  triangles around the loop's centroid, e.g. a segmented object's unseen bottom. The new faces are
  guessed geometry (no camera saw them), which is why it is off by default.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import trimesh

from san.mesh.extract import face_component_labels, face_view_counts, keep_faces

PointMap = Callable[[np.ndarray], np.ndarray]


def region_mask(
    mesh: trimesh.Trimesh,
    region: str,
    cameras: Sequence[Any] | None = None,
    view_fraction: float = 0.25,
    box: np.ndarray | None = None,
    to_input: PointMap | None = None,
) -> np.ndarray:
    """``F`` bool: faces inside the region (module docstring).

    Args:
        mesh: the mesh in the cameras' frame.
        region: ``cameras | box | none``.
        cameras: training cameras (``c2w, K, width, height``) for ``cameras``.
        view_fraction: share of the cameras that must see a face centre.
        box: ``2x3`` input-frame box for ``box``.
        to_input: ``Nx3 -> Nx3`` map from the mesh's frame to the input frame (identity if None).
    """
    n = len(mesh.faces)
    if region == "none" or n == 0:
        return np.ones(n, dtype=bool)
    if region == "cameras":
        if not cameras:
            raise ValueError("mesh.region 'cameras' needs the training cameras")
        need = max(1, int(np.ceil(view_fraction * len(cameras))))
        return face_view_counts(mesh, cameras) >= need
    if region == "box":
        if box is None:
            raise ValueError("mesh.region 'box' needs mesh.region_box [[min x, y, z], [max x, y, z]]")
        box = np.asarray(box, dtype=np.float64)
        centres = np.asarray(mesh.triangles_center, dtype=np.float64)
        if to_input is not None:
            centres = to_input(centres)
        return np.all((centres >= box[0]) & (centres <= box[1]), axis=1)
    raise ValueError(f"mesh.region must be 'cameras', 'box' or 'none', got {region!r}")


def piece_areas(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """``(labels F, areas P)``: each face's connected piece and each piece's area."""
    if len(mesh.faces) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    labels = face_component_labels(mesh)
    return labels, np.bincount(labels, weights=np.asarray(mesh.area_faces, dtype=np.float64))


def remove_small_pieces(mesh: trimesh.Trimesh, min_area_fraction: float) -> trimesh.Trimesh:
    """Drop connected pieces whose area is below ``min_area_fraction`` of the total area."""
    if min_area_fraction <= 0 or len(mesh.faces) == 0:
        return mesh
    labels, areas = piece_areas(mesh)
    return keep_faces(mesh, areas[labels] >= min_area_fraction * areas.sum())


def piece_stats(mesh: trimesh.Trimesh, big_fraction: float = 0.01) -> dict:
    """``{"pieces", "pieces_over_1pct", "area", "largest_piece_fraction"}`` (1 % = ``big_fraction``)."""
    _, areas = piece_areas(mesh)
    total = float(areas.sum())
    return {
        "pieces": int(len(areas)),
        "pieces_over_1pct": int((areas > big_fraction * total).sum()) if total > 0 else 0,
        "area": total,
        "largest_piece_fraction": float(areas.max() / total) if total > 0 else 0.0,
    }


def area_outside_box(mesh: trimesh.Trimesh, box, to_input: PointMap | None = None) -> float:
    """Area of the faces whose centre lies outside the input-frame ``2x3`` ``box``."""
    if len(mesh.faces) == 0:
        return 0.0
    box = np.asarray(box, dtype=np.float64)
    centres = np.asarray(mesh.triangles_center, dtype=np.float64)
    if to_input is not None:
        centres = to_input(centres)
    outside = ~np.all((centres >= box[0]) & (centres <= box[1]), axis=1)
    return float(np.asarray(mesh.area_faces)[outside].sum())


def boundary_loops(mesh: trimesh.Trimesh) -> list[np.ndarray]:
    """Closed loops of boundary edges (edges used by one face), each an array of vertex ids in
    the order that keeps the loop's winding consistent with its faces. Vertices where several
    boundary loops touch are resolved greedily."""
    edges = np.asarray(mesh.edges)  # directed, 3 per face, in face winding
    key = np.sort(edges, axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    boundary = edges[counts[inverse.reshape(-1)] == 1]
    nxt: dict[int, list[int]] = {}
    for a, b in boundary:
        nxt.setdefault(int(a), []).append(int(b))
    loops, used = [], set()
    for a, b in boundary:
        if (int(a), int(b)) in used:
            continue
        loop, cur, nb = [int(a)], int(a), int(b)
        used.add((cur, nb))
        while nb != loop[0]:
            loop.append(nb)
            options = [c for c in nxt.get(nb, []) if (nb, c) not in used]
            if not options:
                break
            used.add((nb, options[0]))
            nb = options[0]
        else:
            loops.append(np.asarray(loop, dtype=np.int64))
    return loops


def close_holes(mesh: trimesh.Trimesh, max_hole_fraction: float = 1.0) -> tuple[trimesh.Trimesh, int]:
    """Close boundary loops whose bounding-box diagonal is at most ``max_hole_fraction`` of the
    mesh's with a fan around each loop's centroid (module docstring).

    Returns:
        ``(mesh with the new faces appended after the old ones, number of holes closed)``; the old
        faces keep their indices, new vertices are appended. Fan faces are wound opposite to the
        boundary edges, so they orient like their neighbours.
    """
    if len(mesh.faces) == 0:
        return mesh, 0
    diag = float(np.linalg.norm(np.ptp(mesh.vertices, axis=0)))
    verts = [np.asarray(mesh.vertices, dtype=np.float64)]
    faces = [np.asarray(mesh.faces, dtype=np.int64)]
    n_v, closed = len(verts[0]), 0
    for loop in boundary_loops(mesh):
        pts = verts[0][loop]
        if len(loop) < 3 or np.linalg.norm(np.ptp(pts, axis=0)) > max_hole_fraction * diag:
            continue
        verts.append(pts.mean(axis=0, keepdims=True))
        # boundary edge (a -> b) belongs to a face wound a -> b; the fan face uses b -> a.
        faces.append(np.stack([np.roll(loop, -1), loop, np.full(len(loop), n_v)], axis=1))
        n_v += 1
        closed += 1
    if not closed:
        return mesh, 0
    return trimesh.Trimesh(np.concatenate(verts), np.concatenate(faces), process=False), closed
