"""Mesh extraction from a density field, as NeRF2Mesh's coarse stage does it.

Steps (each one a small function below; :func:`extract_mesh_with_stats` chains them):

1. **Density grid, slab by slab.** The bounding box is sampled on a grid whose *longest* side has
   ``resolution`` samples; the other sides get proportionally fewer, so voxels are (nearly) cubes.
   The grid is walked along ``x`` in slabs of ``slab`` planes; each slab's points go to the density
   function in chunks of ``chunk`` points. Marching cubes runs on each slab separately (slabs share
   their boundary plane, so no cube is missed or doubled) and vertices on shared planes are merged
   exactly. The full grid is never held: memory is one slab, ``slab * ny * nz * 4`` bytes
   (512 samples, slab 32: 32 MiB) instead of ``512^3 * 4`` bytes = 512 MiB.
2. **Marching cubes** (``skimage.measure.marching_cubes``, Lewiner) at the density ``threshold``.
   The default 10 follows NeRF2Mesh. Density is an extinction coefficient in the normalised frame's
   units (1 / length), so it means: a layer of thickness 0.1 (a few percent of the normalised scene)
   at density 10 is already 63 % opaque. Trained surfaces reach densities of hundreds to thousands,
   so the level set sits just outside the surface; lower levels pick up haze and floaters, higher
   ones erode thin structures. The same threshold fits every scene because every scene is
   normalised (:mod:`san.data.scene`).
3. **Visibility**: faces whose centre lies in no training camera's image (inside the image and in
   front of the camera; occlusion is not tested) are removed: the field is unconstrained there.
4. **Small pieces**: connected components with fewer than ``min_component_fraction`` of the faces
   are removed (floaters).
4b. **Region and pieces** (:mod:`san.mesh.clean`): faces outside the region the training cameras
   look at (``region``) are cut, then pieces below ``min_piece_area_fraction`` of the area.
5. **Decimation** to ``target_faces`` with quadric error metrics (the ``fast-simplification``
   package, the same backend as trimesh's ``simplify_quadric_decimation``).
6. **Vertex colours** from ``color_fn(points, directions)``, looking at each vertex along its inward
   normal (``direction = -normal``), the way a camera in front of the surface sees it.

**Another field.** The same slabs mesh any field that is larger inside than outside at another
``level``: ``mesh.method: tsdf`` meshes the negated TSDF fused from the NeRF's rendered depth at
level 0 (:mod:`san.mesh.tsdf`), whose NaN values (no view observes the point) are *unknown*: cubes
with an unknown corner are skipped (``unknown_nan``).

**Grid domain.** By default the grid is laid out in the world (the density's frame). With
``grid_to_world`` it is laid out in another domain, and grid points and vertices are mapped to the
world through it. The pipeline uses this for forward-facing scenes: their NeRF lives in NDC, whose
densities are per NDC unit and whose resolution is uniform in disparity, so the grid is uniform in
NDC too (a world grid over the frustum would spend most voxels far away). The map must preserve
orientation (checked) so that normals stay outward.

Everything here works in the frame the density is defined in (``san``'s normalised frame for a
NeRF); :func:`to_input_frame` maps a mesh back to the capture's frame with the saved
:class:`~san.data.scene.Normalization`. The mesh is open where the surface leaves the bounding box
(no artificial caps). For forward-facing scenes the model's bounding box is the region that the
views cover; it is the model's job to report it (``NeRFModel.bounding_box``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.measure import marching_cubes

from san.cameras import Camera, project_points
from san.config import from_dict, with_preset
from san.data.scene import Frame
from san.mesh.config import MeshConfig
from san.utils.progress import Progress

log = logging.getLogger("san")

DensityFn = Callable[[torch.Tensor], torch.Tensor]
"""``points Px3 -> density P`` (world / normalised frame, non-negative)."""

PointMap = Callable[[torch.Tensor], torch.Tensor]
"""``points Px3 -> points Px3`` between the grid domain and the world (float64 in, float64 out)."""

ColorFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(points Px3, unit view directions Px3) -> rgb Px3`` in ``[0, 1]``."""


def mesh_config(section: Mapping[str, Any] | None = None) -> MeshConfig:
    """Build :class:`MeshConfig` from the ``mesh:`` config section (``preset: cpu | paper`` plus
    overrides; unknown keys are an error naming the key)."""
    return from_dict(MeshConfig, with_preset(MeshConfig.PRESETS, section, "mesh"), "mesh")


def mesh_cameras(
    c2ws: Sequence[np.ndarray], Ks: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]]
) -> list[Camera]:
    """Cameras (:class:`~san.cameras.Camera`, one per view) from parallel lists: ``c2w 4x4``,
    ``K 3x3``, ``(width, height)``."""
    if not len(c2ws) == len(Ks) == len(sizes):
        raise ValueError(f"mesh_cameras: {len(c2ws)} poses, {len(Ks)} intrinsics, {len(sizes)} sizes")
    return [Camera(c, k, int(w), int(h)) for c, k, (w, h) in zip(c2ws, Ks, sizes)]


def view_distortion(view: Camera | Frame) -> dict[str, float] | None:
    """The lens distortion to project through for ``view``: a :class:`~san.data.scene.Frame`'s
    capture coefficients (:data:`san.cameras.DISTORTION_KEYS`), ``None`` (pinhole) for a bare
    :class:`~san.cameras.Camera`, which has none."""
    return view.distortion if isinstance(view, Frame) else None


@dataclass
class MeshExtraction:
    """Result of :func:`extract_mesh_with_stats`: the mesh and what each step did.

    ``stats`` holds ``grid`` (shape, spacing, density range), ``counts`` (faces / vertices after
    each step) and ``timings_s`` (seconds per step).
    """

    mesh: trimesh.Trimesh
    stats: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- grid + marching cubes


def grid_shape(bbox_min: np.ndarray, bbox_max: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples per axis (``3`` ints, longest side ``resolution``) and the spacing (``3`` floats)."""
    extent = np.asarray(bbox_max, dtype=np.float64) - np.asarray(bbox_min, dtype=np.float64)
    if not np.all(extent > 0):
        raise ValueError(f"bounding box is empty or inverted: min {list(bbox_min)}, max {list(bbox_max)}")
    n = np.maximum(2, np.round(extent / extent.max() * (resolution - 1)).astype(np.int64) + 1)
    return n, extent / (n - 1)


@torch.no_grad()
def query_chunked(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor, chunk: int) -> np.ndarray:
    """Call ``fn`` on row chunks of ``inputs`` (each ``PxD``) and concatenate as float32 numpy."""
    out = [fn(*(x[i : i + chunk] for x in inputs)).detach().float().cpu() for i in range(0, inputs[0].shape[0], chunk)]
    return torch.cat(out).numpy()


def density_slab(
    density_fn: DensityFn,
    bbox_min: np.ndarray,
    spacing: np.ndarray,
    x_range: tuple[int, int],
    ny: int,
    nz: int,
    chunk: int,
    device: torch.device | str = "cpu",
    keep_nan: bool = False,
) -> tuple[np.ndarray, int]:
    """Density on grid planes ``x_range[0] <= i < x_range[1]``.

    Points are generated chunk by chunk from flat grid indices, so memory beyond the returned slab
    is one chunk of points.

    Returns:
        ``((i1 - i0) x ny x nz float32, number of non-finite values)``. NaN becomes 0 (kept with
        ``keep_nan``: an unknown value, see :func:`marching_cubes_slabs`) and ``+inf`` the float32
        maximum, so marching cubes never sees an infinite value.
    """
    i0, i1 = x_range
    total = (i1 - i0) * ny * nz
    out = np.empty(total, dtype=np.float32)
    lo = torch.as_tensor(bbox_min, dtype=torch.float64, device=device)
    step = torch.as_tensor(spacing, dtype=torch.float64, device=device)
    with torch.no_grad():
        for s in range(0, total, chunk):
            flat = torch.arange(s, min(s + chunk, total), device=device)
            idx = torch.stack([flat // (ny * nz) + i0, (flat // nz) % ny, flat % nz], dim=-1)
            sigma = density_fn((idx * step + lo).float()).reshape(-1)
            if sigma.shape[0] != flat.shape[0]:
                raise ValueError(f"density_fn returned {sigma.shape[0]} values for {flat.shape[0]} points")
            out[s : s + len(flat)] = sigma.detach().float().cpu().numpy()
    bad = int((~np.isfinite(out)).sum())
    if bad:
        out = np.nan_to_num(out, nan=np.nan if keep_nan else 0.0, posinf=np.finfo(np.float32).max, neginf=0.0)
    return out.reshape(i1 - i0, ny, nz), bad


def marching_cubes_slabs(
    density_fn: DensityFn,
    bbox_min: np.ndarray,
    bbox_max: np.ndarray,
    config: MeshConfig,
    device: torch.device | str = "cpu",
    level: float | None = None,
    unknown_nan: bool = False,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Marching cubes over the density grid, one slab of ``config.slab`` cubes at a time.

    ``level`` is the iso-value (default ``config.threshold``). With ``unknown_nan`` the function's
    NaN values mean *unknown* (the TSDF of :mod:`san.mesh.tsdf` where no view looks): cubes with
    an unknown corner are skipped (``marching_cubes``' ``mask``), so no surface is made there.

    Returns:
        ``(vertices Vx3 float64 in the density's frame, faces Fx3 int64, grid stats)``. Faces are
        wound so that normals point out of the dense region (towards lower density).
    """
    bbox_min = np.asarray(bbox_min, dtype=np.float64)
    n, spacing = grid_shape(bbox_min, bbox_max, config.resolution)
    nx, ny, nz = (int(v) for v in n)
    level = config.threshold if level is None else float(level)
    verts, faces, n_verts = [], [], 0
    lo, hi, n_bad = np.inf, -np.inf, 0
    prev_plane = None  # the shared boundary plane, carried over so it is queried once
    starts = range(0, nx - 1, config.slab)
    progress = Progress(len(starts), every=max(1, len(starts) // 4), name="mesh density slab")
    for step, i0 in enumerate(starts):
        i1 = min(i0 + config.slab, nx - 1)  # cubes i0..i1-1 need planes i0..i1
        first = i0 if prev_plane is None else i0 + 1
        new, bad = density_slab(
            density_fn, bbox_min, spacing, (first, i1 + 1), ny, nz, config.chunk, device, keep_nan=unknown_nan
        )
        n_bad += bad
        progress.update(step)
        vol = new if prev_plane is None else np.concatenate([prev_plane, new], axis=0)
        prev_plane = vol[-1:].copy()
        mask = None
        if unknown_nan:
            known = np.isfinite(vol)
            if not known.any():
                continue
            # a cube is meshed only if its 8 corners are known; skimage reads the mask of cube
            # [i, i+1] x [j, j+1] x [k, k+1] at its *last* corner (i+1, j+1, k+1) (checked in tests)
            mask = np.zeros_like(known)
            mask[1:, 1:, 1:] = (
                known[:-1, :-1, :-1] & known[1:, :-1, :-1] & known[:-1, 1:, :-1] & known[:-1, :-1, 1:]
                & known[1:, 1:, :-1] & known[1:, :-1, 1:] & known[:-1, 1:, 1:] & known[1:, 1:, 1:]
            )  # fmt: skip
            vol = np.where(known, vol, np.float32(level))
        lo, hi = min(lo, float(vol.min())), max(hi, float(vol.max()))
        if not (vol.min() <= level <= vol.max()) or vol.min() == vol.max() or (mask is not None and not mask.any()):
            continue  # no crossing in this slab
        v, f, _, _ = marching_cubes(vol, level=level, allow_degenerate=False, mask=mask)
        v = v.astype(np.float64)
        v[:, 0] += i0  # integer offset in index units: shared-plane vertices stay bit-identical
        verts.append(v)
        faces.append(f + n_verts)
        n_verts += len(v)
    stats = {
        "shape": [nx, ny, nz],
        "spacing": spacing.tolist(),
        "bbox_min": bbox_min.tolist(),
        "bbox_max": np.asarray(bbox_max, dtype=np.float64).tolist(),
        "density_min": lo,
        "density_max": hi,
        "density_nonfinite": n_bad,
        "threshold": level,
    }
    if not verts:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), stats
    v_idx = np.concatenate(verts)
    f = np.concatenate(faces).astype(np.int64)
    # Vertices on a shared slab plane come out bit-identical from both slabs: merge them exactly.
    v_idx, inverse = np.unique(v_idx, axis=0, return_inverse=True)
    f = inverse.reshape(-1)[f]
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    # skimage's "descent" winding has normals pointing towards *higher* values in index order;
    # reverse it so they point out of the dense region, as a surface normal should.
    f = f[:, ::-1].copy()
    return v_idx * spacing + bbox_min, f, stats


# --------------------------------------------------------------------------- cleanup steps


def face_view_counts(mesh: trimesh.Trimesh, cameras: Sequence[Camera | Frame], chunk: int = 1 << 18) -> np.ndarray:
    """How many cameras see each face centre (inside the image, in front of the camera): ``F`` ints.

    ``cameras`` are unbatched :class:`~san.cameras.Camera` objects (pinhole) or
    :class:`san.data.scene.Frame` objects (projected through their ``distortion``,
    :func:`view_distortion`), in the mesh's frame. Occlusion is not tested.
    """
    centres = torch.tensor(np.asarray(mesh.triangles_center), dtype=torch.float64)
    counts = np.zeros(len(centres), dtype=np.int64)
    for cam in cameras:
        c2w = torch.as_tensor(np.asarray(cam.c2w), dtype=torch.float64)
        K = torch.as_tensor(np.asarray(cam.K), dtype=torch.float64)
        for s in range(0, len(centres), chunk):
            uv, z = project_points(centres[s : s + chunk], c2w, K, view_distortion(cam))
            seen = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cam.height)
            counts[s : s + chunk] += seen.numpy()
    return counts


def keep_faces(mesh: trimesh.Trimesh, mask: np.ndarray) -> trimesh.Trimesh:
    """A new mesh with the faces where ``mask`` (``F`` bool) is true and no unreferenced vertices."""
    out = trimesh.Trimesh(mesh.vertices, mesh.faces[np.asarray(mask, dtype=bool)], process=False)
    out.remove_unreferenced_vertices()
    return out


def remove_unseen_faces(
    mesh: trimesh.Trimesh, cameras: Sequence[Camera | Frame], min_views: int = 1
) -> trimesh.Trimesh:
    """Drop faces seen by fewer than ``min_views`` cameras (see :func:`face_view_counts`)."""
    if min_views <= 0 or len(mesh.faces) == 0:
        return mesh
    return keep_faces(mesh, face_view_counts(mesh, cameras) >= min_views)


def face_component_labels(mesh: trimesh.Trimesh) -> np.ndarray:
    """Connected-component label of each face (faces sharing a vertex are connected): ``F`` ints."""
    f = mesh.faces
    n_f, n_v = len(f), len(mesh.vertices)
    # Bipartite face-vertex graph: components of faces = components of this graph.
    rows = np.repeat(np.arange(n_f), 3)
    graph = coo_matrix((np.ones(3 * n_f), (rows, n_f + f.reshape(-1))), shape=(n_f + n_v, n_f + n_v))
    _, labels = connected_components(graph, directed=False)
    return labels[:n_f]


def remove_small_components(mesh: trimesh.Trimesh, min_fraction: float) -> trimesh.Trimesh:
    """Drop connected components holding fewer than ``min_fraction`` of all faces."""
    if min_fraction <= 0 or len(mesh.faces) == 0:
        return mesh
    labels = face_component_labels(mesh)
    sizes = np.bincount(labels)
    return keep_faces(mesh, sizes[labels] >= min_fraction * len(mesh.faces))


def decimate(mesh: trimesh.Trimesh, target_faces: int) -> trimesh.Trimesh:
    """Quadric decimation to ``target_faces`` (no-op when already below it or ``target_faces == 0``)."""
    if target_faces <= 0 or len(mesh.faces) <= target_faces:
        return mesh
    try:
        from fast_simplification import simplify
    except ImportError as e:
        raise ImportError(
            "mesh decimation needs the 'fast-simplification' package (pip install fast-simplification), "
            "or set mesh.target_faces: 0"
        ) from e
    verts, faces = simplify(
        np.asarray(mesh.vertices, dtype=np.float64),
        np.asarray(mesh.faces, dtype=np.int64),
        target_count=int(target_faces),
    )
    return trimesh.Trimesh(verts, faces, process=False)


def vertex_colors(
    mesh: trimesh.Trimesh, color_fn: ColorFn, chunk: int = 65536, device: torch.device | str = "cpu"
) -> np.ndarray:
    """``Vx4`` uint8 RGBA colours: the field's colour at each vertex seen along ``-normal``."""
    points = torch.tensor(np.asarray(mesh.vertices), dtype=torch.float32, device=device)
    normals = torch.tensor(np.asarray(mesh.vertex_normals), dtype=torch.float32, device=device)
    rgb = query_chunked(color_fn, points, -normals, chunk=chunk)
    rgb = np.clip(np.nan_to_num(rgb, nan=0.0), 0.0, 1.0)
    rgba = np.concatenate([np.round(rgb * 255), np.full((len(rgb), 1), 255)], axis=1)
    return rgba.astype(np.uint8)


def to_input_frame(mesh: trimesh.Trimesh, normalization) -> trimesh.Trimesh:
    """The mesh mapped from the normalised frame to the capture's frame.

    ``normalization`` is a :class:`san.data.scene.Normalization`; vertex colours are kept, and the
    winding is reversed if the transform is a reflection so that normals still point outwards.
    """
    verts = normalization.to_input_points(np.asarray(mesh.vertices))
    faces = np.asarray(mesh.faces)
    if np.linalg.det(np.asarray(normalization.transform)[:3, :3]) < 0:
        faces = faces[:, ::-1]
    colors = mesh.visual.vertex_colors if mesh.visual.kind == "vertex" else None
    return trimesh.Trimesh(verts, faces.copy(), vertex_colors=colors, process=False)


# --------------------------------------------------------------------------- the whole chain


def orientation_sign(grid_to_world: PointMap, bbox_min: np.ndarray, bbox_max: np.ndarray, eps: float = 1e-4) -> float:
    """Sign of the Jacobian determinant of ``grid_to_world`` at the box centre (finite differences)."""
    c = torch.as_tensor((np.asarray(bbox_min) + np.asarray(bbox_max)) / 2, dtype=torch.float64)
    h = eps * float(np.max(np.asarray(bbox_max) - np.asarray(bbox_min)))
    pts = torch.stack(
        [c, c + torch.tensor([h, 0, 0]), c + torch.tensor([0, h, 0]), c + torch.tensor([0, 0, h])]
    ).double()
    w = grid_to_world(pts)
    return float(np.sign(np.linalg.det((w[1:] - w[0]).numpy())))


def _counts(mesh: trimesh.Trimesh) -> dict[str, int]:
    return {"faces": int(len(mesh.faces)), "vertices": int(len(mesh.vertices))}


def extract_mesh_with_stats(
    density_fn: DensityFn,
    bbox: tuple[Sequence[float], Sequence[float]] | np.ndarray | torch.Tensor,
    config: MeshConfig = MeshConfig(),
    cameras: Sequence[Camera | Frame] | None = None,
    color_fn: ColorFn | None = None,
    device: torch.device | str = "cpu",
    grid_to_world: PointMap | None = None,
    to_input: Callable[[np.ndarray], np.ndarray] | None = None,
    level: float | None = None,
    unknown_nan: bool = False,
) -> MeshExtraction:
    """Density field -> cleaned, decimated, coloured triangle mesh (steps in the module docstring).

    Args:
        density_fn: ``points Px3 -> density P`` on ``device``, world points.
        bbox: ``(min xyz, max xyz)`` (or a ``2x3`` array / tensor) of the region to mesh, in the
            grid domain (the world unless ``grid_to_world`` is given).
        config: :class:`MeshConfig`.
        cameras: training cameras (:class:`~san.cameras.Camera` / :class:`~san.data.scene.Frame`) in the same
            frame; ``None`` skips the visibility step.
        color_fn: ``(points Px3, directions Px3) -> rgb Px3``; ``None`` (or ``config.colors`` off)
            leaves the mesh uncoloured.
        device: where query points are created.
        grid_to_world: optional map from the grid domain to the world (module docstring).
        to_input: ``Nx3`` world -> input-frame points, for ``region: box`` and its statistics.
        level: iso-value of the surface (default ``config.threshold``); ``density_fn`` may be any
            field larger inside than outside, e.g. the negated TSDF of :func:`san.mesh.tsdf.tsdf_fn`
            at level 0.
        unknown_nan: NaN values of ``density_fn`` mean unknown (:func:`marching_cubes_slabs`).

    Returns:
        :class:`MeshExtraction` (mesh in the world); raises ``ValueError`` if no surface crosses the
        level (the message gives the range of values found).
    """
    box = torch.as_tensor(np.asarray(bbox.cpu() if isinstance(bbox, torch.Tensor) else bbox, dtype=np.float64))
    if box.shape != (2, 3):
        raise ValueError(f"bbox must be (min xyz, max xyz), got shape {tuple(box.shape)}")
    bbox_min, bbox_max = box[0].numpy(), box[1].numpy()
    timings, counts = {}, {}

    t = time.perf_counter()
    if grid_to_world is None:
        query = density_fn
    else:
        if orientation_sign(grid_to_world, bbox_min, bbox_max) < 0:
            raise ValueError("grid_to_world reverses orientation; normals would point inwards")

        def query(g: torch.Tensor) -> torch.Tensor:
            return density_fn(grid_to_world(g.double()).to(g.dtype))

    verts, faces, grid = marching_cubes_slabs(query, bbox_min, bbox_max, config, device, level, unknown_nan)
    grid["domain"] = "world" if grid_to_world is None else "mapped"
    if grid_to_world is not None:
        verts = grid_to_world(torch.from_numpy(verts)).numpy()
    timings["marching_cubes"] = time.perf_counter() - t
    if len(faces) == 0:
        raise ValueError(
            f"no surface at density threshold {grid['threshold']} inside the bounding box: densities range "
            f"{grid['density_min']:.4g}..{grid['density_max']:.4g} on the {grid['shape']} grid (set mesh.threshold)"
            if level is None
            else f"no surface at level {grid['threshold']} inside the bounding box: values range "
            f"{grid['density_min']:.4g}..{grid['density_max']:.4g} on the {grid['shape']} grid"
        )
    mesh = trimesh.Trimesh(verts, faces, process=False)
    counts["marching_cubes"] = _counts(mesh)
    log.info("mesh: marching cubes on %s grid -> %d faces", grid["shape"], len(mesh.faces))

    steps: list[tuple[str, Callable[[trimesh.Trimesh], trimesh.Trimesh]]] = []
    if cameras is not None:
        steps.append(("visibility", lambda m: remove_unseen_faces(m, cameras, config.min_views)))
    steps.append(("components", lambda m: remove_small_components(m, config.min_component_fraction)))
    clean_stats: dict[str, Any] = {"region": config.region}

    def region_step(m: trimesh.Trimesh) -> trimesh.Trimesh:
        from san.mesh.clean import region_mask

        inside = region_mask(m, config.region, cameras, config.region_view_fraction, config.region_box, to_input)
        clean_stats["area_before_region"] = float(m.area)
        clean_stats["area_outside_region_removed"] = float(np.asarray(m.area_faces)[~inside].sum())
        return keep_faces(m, inside)

    def pieces_step(m: trimesh.Trimesh) -> trimesh.Trimesh:
        from san.mesh.clean import piece_stats, remove_small_pieces

        clean_stats["before_pieces"] = piece_stats(m)
        return remove_small_pieces(m, config.min_piece_area_fraction)

    if config.region != "none" and (cameras is not None or config.region == "box"):
        steps.append(("region", region_step))
    steps.append(("pieces", pieces_step))
    steps.append(("decimation", lambda m: decimate(m, config.target_faces)))
    for name, step in steps:
        t = time.perf_counter()
        mesh = step(mesh)
        timings[name] = time.perf_counter() - t
        counts[name] = _counts(mesh)
        log.info("mesh: %s -> %d faces", name, len(mesh.faces))
        if len(mesh.faces) == 0:
            raise ValueError(
                f"mesh: no faces left after step {name!r} (see mesh.min_views / mesh.min_component_fraction)"
            )

    from san.mesh.clean import piece_stats

    clean_stats.update(piece_stats(mesh))
    if color_fn is not None and config.colors:
        t = time.perf_counter()
        mesh.visual.vertex_colors = vertex_colors(mesh, color_fn, config.chunk, device)
        timings["colors"] = time.perf_counter() - t
    return MeshExtraction(mesh, {"grid": grid, "counts": counts, "timings_s": timings, "clean": clean_stats})


def extract_mesh(
    density_fn: DensityFn,
    bbox: tuple[Sequence[float], Sequence[float]] | np.ndarray | torch.Tensor,
    config: MeshConfig = MeshConfig(),
    cameras: Sequence[Camera | Frame] | None = None,
    color_fn: ColorFn | None = None,
    device: torch.device | str = "cpu",
    grid_to_world: PointMap | None = None,
    to_input: Callable[[np.ndarray], np.ndarray] | None = None,
) -> trimesh.Trimesh:
    """:func:`extract_mesh_with_stats` without the statistics."""
    return extract_mesh_with_stats(density_fn, bbox, config, cameras, color_fn, device, grid_to_world, to_input).mesh
