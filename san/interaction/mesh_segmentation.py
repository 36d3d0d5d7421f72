"""Segment a mesh from 2D masks: visibility-aware projection, multi-view vote, export.

Pipeline: for every view, :func:`san.rendering.mesh_raster.rasterize_faces` draws a z-buffer of
*face ids* at the view's resolution (pure torch, CPU or GPU); :func:`observe_faces` turns it and the view's ``HxW`` mask into
per-face "visible" / "inside the mask" flags; :class:`MeshSegmenter` counts them over views and
selects faces by a vote; :func:`export_segmentation` writes the selected faces and the rest of the
scene as PLY and GLB.

Rasteriser: :mod:`san.rendering.mesh_raster`.

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

from san.cameras import as_tensor, project_points, rays_from_pixels
from san.interaction.tracking import DepthTolerance, pixel_indices, pixels_inside
from san.rendering.mesh_raster import FaceRaster, mesh_arrays, rasterize_faces
from san.utils.io import atomic_path, atomic_write_json

MESH_TOLERANCE = DepthTolerance(relative=0.01, absolute=0.001)
SEGMENT_COLOUR = (255, 140, 0, 255)  # painted on segments of meshes without vertex colours
REST_COLOUR = (170, 170, 170, 255)


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
    v, f = mesh_arrays(vertices, faces)
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
        self.vertices, self.faces = mesh_arrays(self.vertices, self.faces)
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

    segment_ply: Path | None
    segment_glb: Path | None
    rest_ply: Path | None
    rest_glb: Path | None
    summary: Path
    segment_faces: int
    rest_faces: int
    frame: str

    @property
    def files(self) -> list[Path]:
        """The mesh files written (an empty part has none)."""
        return [p for p in (self.segment_ply, self.segment_glb, self.rest_ply, self.rest_glb) if p is not None]

    @property
    def empty(self) -> list[str]:
        """``"segment"`` when nothing was selected, ``"rest"`` when everything was."""
        return [name for name, n in (("segment", self.segment_faces), ("rest", self.rest_faces)) if n == 0]


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
    up=None,
) -> SegmentationExport:
    """Write ``{stem}.ply/.glb`` (the selected faces) and ``{stem}_rest.ply/.glb`` (the scene
    without them) plus ``{stem}.json`` (counts, frame, transform), atomically.

    An empty part (nothing selected: a click on the sky; or everything selected) gets no mesh
    files: its face count is 0, it is listed under ``"empty"`` in the JSON with a note, and mesh
    files of that part left by an earlier export to the same folder are removed. Every mesh is
    encoded in memory before the first file is written, so a failure leaves no partial object.

    Args:
        mesh: a ``trimesh.Trimesh`` in the normalised frame (or any frame when ``normalization`` is None).
        selected: ``F`` bool faces to cut out.
        normalization: :class:`san.data.scene.Normalization` of the scene; required for ``frame="input"``
            unless None, in which case the mesh's own frame is kept and recorded as such.
        frame: ``"input"`` (capture frame, default) or ``"normalized"``.
        metadata: extra entries for the JSON summary.
        up: the input frame's scene up (:func:`san.mesh.export.scene_up`): the GLBs are rotated to
            glTF's +Y up (:func:`san.mesh.export.write_glb`); ``None`` keeps the written frame's axes.
    """
    from san.mesh.export import glb_bytes

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
    meta = metadata or {}
    provenance = {
        "source_scene": meta.get("scene"),
        "stage": "segment",
        "teacher": meta.get("teacher"),
        "untrained": meta.get("untrained"),
    }
    encoded: dict[Path, bytes] = {}
    for name, part in ((stem, segment), (f"{stem}_rest", rest)):
        if len(part.faces) == 0:
            continue
        encoded[out / f"{name}.ply"] = part.export(file_type="ply")
        encoded[out / f"{name}.glb"] = glb_bytes(part, up if frame_written == "input" else None, provenance)[0]
    empty = [label for label, part in (("segment", segment), ("rest", rest)) if len(part.faces) == 0]
    paths: dict[str, Path | None] = {}
    for name in (stem, f"{stem}_rest"):
        for ext in ("ply", "glb"):
            path = out / f"{name}.{ext}"
            if path in encoded:
                with atomic_path(path) as tmp:
                    tmp.write_bytes(encoded[path])
                paths[f"{name}.{ext}"] = path
            else:
                path.unlink(missing_ok=True)  # an earlier export's file would look like this one's
                paths[f"{name}.{ext}"] = None
    notes = {
        "segment": "nothing selected (the mask covers no mesh face): no segment files",
        "rest": "every face selected: no rest files",
    }
    summary = out / f"{stem}.json"
    atomic_write_json(
        summary,
        {
            "segment_faces": len(segment.faces),
            "rest_faces": len(rest.faces),
            "total_faces": len(segment.faces) + len(rest.faces),
            "empty": empty,
            "empty_note": "; ".join(notes[e] for e in empty),
            "files": [p.name for p in encoded],
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
