"""Segment a mesh from 2D masks: visibility-aware projection, multi-view vote, export.

Pipeline: for every view, :func:`rasterize_faces` draws a z-buffer of *face ids* at the view's
resolution (pure torch, CPU or GPU); :func:`observe_faces` turns it and the view's ``HxW`` mask into
per-face "visible" / "inside the mask" flags; :class:`MeshSegmenter` counts them over views and
selects faces by a vote; :func:`export_segmentation` writes the selected faces and the rest of the
scene as PLY and GLB.

Rasteriser. Every face is intersected (Moeller-Trumbore) with the rays of the pixel centres inside
its projected bounding box; the nearest hit per pixel wins (one ``scatter_reduce(amin)`` over keys
that pack the float32 distance above the face id). Intersecting the real pixel rays makes the
z-buffer depth the distance along the ray (the same depth a NeRF renders) and handles lens
distortion (boxes grown by a pixel) and faces that cross the camera plane (the box of their part in
front of it; the whole image with distortion). Faces entirely behind the
camera are culled; there is no back-face culling (extracted meshes need not be consistently
oriented).

Per-view observation of a face. Its *samples* in a view are the pixels it owns in the z-buffer plus
its centroid's pixel when that passes a one-sided depth test: the centroid is on-screen and in
front of the camera, that pixel sees the mesh, and the face's plane, intersected with the ray of
the pixel's centre, is not farther than the z-buffer depth there plus ``tol`` (:class:`~san.interaction.tracking.DepthTolerance`,
default 1 % + 0.001). Comparing along the same ray makes the test exact for the face that owns
the pixel and second-order (curvature) for its neighbours on a smooth surface. The centroid sample
keeps faces smaller than a pixel, which own no pixel centre, from being invisible in every view.
The face is *visible* in the view when it has a sample, and *inside* the mask when at least half of
its samples are. Occluded faces have no sample, so they get no label from that view.

Vote (:class:`MeshSegmenter`): a face is selected when it was visible in ``>= min_views`` views
(default 1) and inside the mask in ``>= vote_threshold`` (default 50 %) of the views where it was
visible. Faces never seen are never selected.

Frames. The mesh and the cameras must be in the same frame. The pipeline's extracted mesh
(``mesh/mesh_normalized.ply``) and ``cameras.json`` poses are in ``san``'s *normalised* frame;
:func:`export_segmentation` writes, by default, in the capture's *input* frame (the frame of the
COLMAP / LLFF / transforms poses the user gave), mapping vertices with
:meth:`san.data.scene.Normalization.to_input_points`; ``frame="normalized"`` keeps the mesh's frame.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from san.cameras import pixel_grid, project_points, rays_from_pixels
from san.interaction.tracking import DepthTolerance, as_tensor, pixel_indices, pixels_inside
from san.rendering.mesh_raycast import clipped_plane_bounds
from san.utils.io import atomic_path, atomic_write_json

MESH_TOLERANCE = DepthTolerance(relative=0.01, absolute=0.001)
SEGMENT_COLOUR = (255, 140, 0, 255)  # painted on segments of meshes without vertex colours
REST_COLOUR = (170, 170, 170, 255)
_EMPTY_KEY = torch.iinfo(torch.int64).max


@dataclass(frozen=True)
class FaceRaster:
    """A face-id z-buffer.

    Attributes:
        face_ids: ``HxW`` int64 id of the nearest face at each pixel centre, ``-1`` where none.
        depth: ``HxW`` float32 distance along the pixel's ray to that face, ``inf`` where none.
    """

    face_ids: torch.Tensor
    depth: torch.Tensor


@dataclass(frozen=True)
class FaceObservation:
    """What one view says about every face (``F`` = number of faces).

    Attributes:
        visible: ``F`` bool, the face has a sample in the view (see the module docstring).
        inside: ``F`` bool, visible and at least half of its samples are inside the mask.
        pixels: ``F`` int64, pixel centres the face owns in the z-buffer.
    """

    visible: torch.Tensor
    inside: torch.Tensor
    pixels: torch.Tensor


def _mesh_arrays(vertices, faces) -> tuple[torch.Tensor, torch.Tensor]:
    v = as_tensor(vertices, torch.float64).reshape(-1, 3)
    f = as_tensor(faces, torch.int64).reshape(-1, 3)
    if f.numel() and (int(f.min()) < 0 or int(f.max()) >= v.shape[0]):
        raise ValueError(f"faces index vertices outside [0, {v.shape[0]})")
    return v, f


def rasterize_faces(
    vertices,
    faces,
    c2w,
    K,
    width: int,
    height: int,
    distortion: dict[str, float] | None = None,
    device: torch.device | str | None = None,
    max_candidates: int = 1 << 22,
) -> FaceRaster:
    """Z-buffer of face ids at a camera's resolution (see the module docstring).

    Args:
        vertices: ``Vx3`` world vertices. faces: ``Fx3`` vertex indices.
        c2w: ``4x4`` camera-to-world (OpenCV). K: ``3x3``. width, height: image size in pixels.
        distortion: optional OpenCV coefficients.
        device: where to compute (default CPU); the result is on the same device.
        max_candidates: (pixel, face) pairs tested per batch, bounds memory (~100 bytes each).

    Returns:
        :class:`FaceRaster` with ``HxW`` face ids and ray depths.
    """
    device = torch.device(device or "cpu")
    v, f = _mesh_arrays(vertices, faces)
    c2w_t, K_t = as_tensor(c2w), as_tensor(K)
    w2c = torch.linalg.inv(c2w_t)
    cam = (v @ w2c[:3, :3].T + w2c[:3, 3]).to(device, torch.float32)
    f = f.to(device)
    # Unit ray directions of all pixel centres, in the camera frame.
    grid = pixel_grid(width, height, dtype=torch.float64)
    dirs = rays_from_pixels(grid, torch.eye(4, dtype=torch.float64), K_t, distortion).directions
    dirs = dirs.to(device, torch.float32)

    near = 1e-6
    z = cam[:, 2][f]  # Fx3
    front = (z > near).all(dim=1)
    crossing = (z > near).any(dim=1) & ~front
    # Pixel-space bounding boxes of the faces' parts in front of the camera.
    px, _ = project_points(v, c2w_t, K_t, distortion)
    px = px.to(device, torch.float64)[f]  # Fx3x2
    lo, hi = px.amin(dim=1), px.amax(dim=1)
    if distortion:
        lo, hi = lo - 1.0, hi + 1.0
    if bool(crossing.any()):
        lo_c, hi_c = _clipped_bounds(cam.double()[f[crossing]], K_t.to(device), near, width, height, distortion)
        lo[crossing], hi[crossing] = lo_c, hi_c
    lo = lo.clamp(-1.0, width + height + 1.0)  # finite before the casts below
    hi = hi.clamp(-(width + height) - 1.0, width + height + 1.0)
    x0 = torch.ceil(lo[:, 0] - 0.5).clamp(0, width).long()
    x1 = torch.floor(hi[:, 0] - 0.5).clamp(-1, width - 1).long()
    y0 = torch.ceil(lo[:, 1] - 0.5).clamp(0, height).long()
    y1 = torch.floor(hi[:, 1] - 0.5).clamp(-1, height - 1).long()
    bw = (x1 - x0 + 1).clamp(min=0)
    bh = (y1 - y0 + 1).clamp(min=0)
    count = torch.where(front | crossing, bw * bh, torch.zeros_like(bw))
    keep = (count > 0).nonzero().squeeze(1)

    zbuf = torch.full((height * width,), _EMPTY_KEY, dtype=torch.int64, device=device)
    if keep.numel():
        tri = cam[f[keep]]  # Kx3x3 camera-frame corners
        v0 = tri[:, 0]
        e1 = tri[:, 1] - v0
        e2 = tri[:, 2] - v0
        cnt = count[keep]
        bw_k, x0_k, y0_k = bw[keep], x0[keep], y0[keep]
        ends = torch.cumsum(cnt, 0)
        start = 0
        while start < keep.numel():
            # Largest run of faces whose candidates fit (at least one face per batch).
            base = int(ends[start - 1]) if start else 0
            stop = int(torch.searchsorted(ends, base + max_candidates, right=True))
            stop = max(stop, start + 1)
            sel = torch.arange(start, stop, device=device)
            n = cnt[sel]
            fi = torch.repeat_interleave(sel, n)
            offsets = torch.cumsum(n, 0) - n
            local = torch.arange(int(n.sum()), device=device) - torch.repeat_interleave(offsets, n)
            w_f = bw_k[fi]
            col = x0_k[fi] + local % w_f
            row = y0_k[fi] + local // w_f
            pix = row * width + col
            d = dirs[pix]
            a, b, c = v0[fi], e1[fi], e2[fi]
            pvec = torch.linalg.cross(d, c)
            det = (b * pvec).sum(-1)
            inv = 1.0 / torch.where(det.abs() < 1e-12, torch.full_like(det, 1e-12), det)
            tvec = -a
            u = (tvec * pvec).sum(-1) * inv
            qvec = torch.linalg.cross(tvec, b)
            w = (d * qvec).sum(-1) * inv
            t = (c * qvec).sum(-1) * inv
            eps = 1e-6
            hit = (det.abs() >= 1e-12) & (u >= -eps) & (w >= -eps) & (u + w <= 1 + eps) & (t > near)
            t_bits = t[hit].contiguous().view(torch.int32).to(torch.int64)
            key = (t_bits << 32) | keep[fi[hit]]
            zbuf.scatter_reduce_(0, pix[hit], key, reduce="amin", include_self=True)
            start = stop
    empty = zbuf == _EMPTY_KEY
    face_ids = torch.where(empty, torch.full_like(zbuf, -1), zbuf & 0xFFFFFFFF)
    depth = (zbuf >> 32).to(torch.int32).view(torch.float32)
    depth = torch.where(empty, torch.full_like(depth, float("inf")), depth)
    return FaceRaster(face_ids.reshape(height, width), depth.reshape(height, width))


def _clipped_bounds(
    tri: torch.Tensor, K: torch.Tensor, near: float, width: int, height: int, distortion
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel bounding boxes (``Cx2`` lo, hi) of camera-frame triangles ``Cx3x3`` clipped to
    ``z >= near`` (faces crossing the camera plane). With distortion the whole image is used."""
    n = tri.shape[0]
    if distortion:
        lo = torch.zeros(n, 2, dtype=tri.dtype, device=tri.device)
        return lo, torch.tensor([width, height], dtype=tri.dtype, device=tri.device).expand(n, 2).clone()
    lo, hi = clipped_plane_bounds(tri, near)
    scale = torch.stack([K[0, 0], K[1, 1]]).to(tri)
    centre = torch.stack([K[0, 2], K[1, 2]]).to(tri)
    return lo * scale + centre, hi * scale + centre


def observe_faces(
    vertices,
    faces,
    mask,
    c2w,
    K,
    distortion: dict[str, float] | None = None,
    tolerance: DepthTolerance = MESH_TOLERANCE,
    raster: FaceRaster | None = None,
    device: torch.device | str | None = None,
) -> FaceObservation:
    """Project one view's ``HxW`` mask onto the faces visible in that view.

    Args:
        vertices: ``Vx3``. faces: ``Fx3``. mask: ``HxW`` bool (its shape is the view's size).
        c2w, K, distortion: the view's camera (same frame as ``vertices``).
        tolerance: the centroid depth test (see the module docstring).
        raster: a precomputed :func:`rasterize_faces` result for this view (else computed).
    """
    mask_t = as_tensor(mask, torch.bool)
    if mask_t.dim() != 2:
        raise ValueError(f"mask must be HxW, got shape {tuple(mask_t.shape)}")
    height, width = mask_t.shape
    v, f = _mesh_arrays(vertices, faces)
    if raster is None:
        raster = rasterize_faces(v, f, c2w, K, width, height, distortion, device=device)
    if tuple(raster.face_ids.shape) != (height, width):
        raise ValueError(f"raster is {tuple(raster.face_ids.shape)}, mask is {(height, width)}")
    ids = raster.face_ids.cpu().reshape(-1)
    mask_flat = mask_t.reshape(-1)
    owned = ids >= 0
    n_faces = f.shape[0]
    n_pix = torch.bincount(ids[owned], minlength=n_faces)
    n_in = torch.bincount(ids[owned & mask_flat], minlength=n_faces)

    # Centroid sample: the face's plane is intersected with the ray of the pixel centre the
    # centroid falls in, so the face and the z-buffer are compared along the same ray.
    tri = v[f]
    centroids = tri.mean(dim=1)
    c2w_t = as_tensor(c2w)
    pix, z = project_points(centroids, c2w_t, as_tensor(K), distortion)
    on = (z > 1e-9) & pixels_inside(pix, width, height)
    ix, iy = pixel_indices(pix, width, height)
    centres = torch.stack([ix, iy], dim=-1).to(torch.float64) + 0.5
    rays = rays_from_pixels(centres, c2w_t, as_tensor(K), distortion)
    normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    denom = (normal * rays.directions).sum(-1)
    safe = torch.where(denom.abs() < 1e-12, torch.full_like(denom, 1e-12), denom)
    t_plane = (normal * (tri[:, 0] - rays.origins)).sum(-1) / safe
    zdepth = raster.depth.cpu().to(torch.float64)[iy, ix]
    c_vis = (
        on & torch.isfinite(zdepth) & (denom.abs() >= 1e-12) & (t_plane > 0) & (t_plane <= zdepth + tolerance(zdepth))
    )
    c_in = c_vis & mask_t[iy, ix]

    samples = n_pix + c_vis.long()
    inside_samples = n_in + c_in.long()
    visible = samples > 0
    inside = visible & (2 * inside_samples >= samples)
    return FaceObservation(visible, inside, n_pix)


@dataclass
class MeshSegmenter:
    """Accumulates per-view face observations and selects faces by vote (see the module docstring).

    Args:
        vertices: ``Vx3``. faces: ``Fx3`` (the mesh to segment, in the cameras' frame).
        vote_threshold: fraction of a face's visible views in which it must be inside the mask.
        min_views: views in which a face must be visible to be selectable.
        tolerance: centroid depth test of :func:`observe_faces`.
        device: where rasterisation runs (``None`` = CPU).
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    vote_threshold: float = 0.5
    min_views: int = 1
    tolerance: DepthTolerance = MESH_TOLERANCE
    device: torch.device | str | None = None
    visible_count: torch.Tensor = field(init=False)
    inside_count: torch.Tensor = field(init=False)
    views: int = field(init=False, default=0)
    raster_seconds: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.vertices, self.faces = _mesh_arrays(self.vertices, self.faces)
        if not 0 < self.vote_threshold <= 1:
            raise ValueError(f"vote_threshold {self.vote_threshold} must be in (0, 1]")
        if self.min_views < 1:
            raise ValueError(f"min_views {self.min_views} must be >= 1")
        n = self.faces.shape[0]
        self.visible_count = torch.zeros(n, dtype=torch.int64)
        self.inside_count = torch.zeros(n, dtype=torch.int64)

    @classmethod
    def from_trimesh(cls, mesh, **kwargs) -> "MeshSegmenter":
        return cls(np.asarray(mesh.vertices), np.asarray(mesh.faces), **kwargs)

    def add_view(
        self, mask, c2w, K, distortion: dict[str, float] | None = None, raster: FaceRaster | None = None
    ) -> FaceObservation:
        """Project one view's ``HxW`` bool mask onto the mesh and count its votes.

        ``raster``: this view's :func:`rasterize_faces` of the same mesh, to share it between
        several masks of one view (computed when absent).
        """
        mask_t = as_tensor(mask, torch.bool)
        if mask_t.dim() != 2:
            raise ValueError(f"mask must be HxW, got shape {tuple(mask_t.shape)}")
        if raster is None:
            t0 = time.perf_counter()
            raster = rasterize_faces(
                self.vertices, self.faces, c2w, K, mask_t.shape[1], mask_t.shape[0], distortion, device=self.device
            )
            self.raster_seconds += time.perf_counter() - t0
        obs = observe_faces(self.vertices, self.faces, mask_t, c2w, K, distortion, self.tolerance, raster)
        self.visible_count += obs.visible.long()
        self.inside_count += obs.inside.long()
        self.views += 1
        return obs

    def selected(self) -> torch.Tensor:
        """``F`` bool: the faces chosen by the vote."""
        return select_faces(self.visible_count, self.inside_count, self.vote_threshold, self.min_views)


def select_faces(visible_count, inside_count, vote_threshold: float = 0.5, min_views: int = 1) -> torch.Tensor:
    """``F`` bool: visible in ``>= min_views`` views and inside the mask in ``>= vote_threshold`` of them."""
    visible_count = as_tensor(visible_count, torch.int64)
    inside_count = as_tensor(inside_count, torch.int64)
    seen = visible_count >= min_views
    return seen & (inside_count.double() >= vote_threshold * visible_count.double() - 1e-9)


# ------------------------------------------------------------------------------------------ export


@dataclass(frozen=True)
class SegmentationExport:
    """Files written by :func:`export_segmentation` and their face counts."""

    segment_ply: Path
    segment_glb: Path
    rest_ply: Path
    rest_glb: Path
    summary: Path
    segment_faces: int
    rest_faces: int
    frame: str


def split_mesh(mesh, selected):
    """``(segment, rest)`` trimesh meshes: the selected faces and all the others.

    Unused vertices are dropped; vertex colours are carried over when the mesh has them, otherwise
    the segment is painted orange and the rest grey. No face is merged or removed, so the two face
    counts add up to the input's.
    """
    import trimesh

    sel = np.asarray(as_tensor(selected, torch.bool).numpy(), dtype=bool)
    faces = np.asarray(mesh.faces)
    if sel.shape != (faces.shape[0],):
        raise ValueError(f"selected has shape {sel.shape}, the mesh has {faces.shape[0]} faces")
    vertices = np.asarray(mesh.vertices)
    colours = None
    if getattr(mesh.visual, "kind", None) == "vertex":
        colours = np.asarray(mesh.visual.vertex_colors)

    def part(face_mask: np.ndarray, paint: tuple[int, int, int, int]):
        sub = faces[face_mask]
        used, inverse = np.unique(sub.reshape(-1), return_inverse=True)
        vc = colours[used] if colours is not None else np.tile(np.asarray(paint, dtype=np.uint8), (len(used), 1))
        return trimesh.Trimesh(vertices[used], inverse.reshape(-1, 3), vertex_colors=vc, process=False)

    return part(sel, SEGMENT_COLOUR), part(~sel, REST_COLOUR)


def export_segmentation(
    mesh,
    selected,
    out_dir: str | os.PathLike,
    stem: str = "segment",
    normalization=None,
    frame: str = "input",
    metadata: dict | None = None,
) -> SegmentationExport:
    """Write ``{stem}.ply/.glb`` (the selected faces) and ``{stem}_rest.ply/.glb`` (the scene
    without them) plus ``{stem}.json`` (counts, frame, transform), atomically.

    Args:
        mesh: a ``trimesh.Trimesh`` in the normalised frame (or any frame when ``normalization`` is None).
        selected: ``F`` bool faces to cut out.
        normalization: :class:`san.data.scene.Normalization` of the scene; required for ``frame="input"``
            unless None, in which case the mesh's own frame is kept and recorded as such.
        frame: ``"input"`` (capture frame, default) or ``"normalized"``.
        metadata: extra entries for the JSON summary.
    """
    if frame not in ("input", "normalized"):
        raise ValueError(f"frame {frame!r} must be 'input' or 'normalized'")
    segment, rest = split_mesh(mesh, selected)
    frame_written = "mesh"
    if normalization is not None:
        frame_written = frame
        if frame == "input":
            segment.vertices = normalization.to_input_points(segment.vertices)
            rest.vertices = normalization.to_input_points(rest.vertices)
    out = Path(out_dir)
    paths = {}
    for name, part in ((stem, segment), (f"{stem}_rest", rest)):
        for ext in ("ply", "glb"):
            path = out / f"{name}.{ext}"
            with atomic_path(path) as tmp:
                part.export(tmp, file_type=ext)
            paths[f"{name}.{ext}"] = path
    summary = out / f"{stem}.json"
    atomic_write_json(
        summary,
        {
            "segment_faces": len(segment.faces),
            "rest_faces": len(rest.faces),
            "total_faces": len(segment.faces) + len(rest.faces),
            "frame": frame_written,
            "frame_note": {
                "input": "the capture's frame (normalised vertices mapped with Normalization.to_input_points)",
                "normalized": "san's normalised frame (the frame of cameras.json and mesh_normalized.ply)",
                "mesh": "the input mesh's own frame (no normalisation given)",
            }[frame_written],
            "normalization": normalization.to_json() if normalization is not None else None,
            **(metadata or {}),
        },
    )
    return SegmentationExport(
        segment_ply=paths[f"{stem}.ply"],
        segment_glb=paths[f"{stem}.glb"],
        rest_ply=paths[f"{stem}_rest.ply"],
        rest_glb=paths[f"{stem}_rest.glb"],
        summary=summary,
        segment_faces=len(segment.faces),
        rest_faces=len(rest.faces),
        frame=frame_written,
    )
