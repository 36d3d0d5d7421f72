"""One surface point per ray from a triangle mesh (the mesh-surface variant, paper Eq. 7).

Two implementations with the same result (nearest hit along each ray, both faces of a triangle
count):

* :func:`raycast_mesh_reference` tests every ray against every face (Moeller-Trumbore) in chunks:
  simple and obviously right, ``O(rays x faces)``.
* :func:`raycast_mesh_binned` is the fast path for rays that share one origin (every camera's
  rays): the mesh is projected onto the image plane of the rays' mean direction, the rays are
  bucketed on that plane (about one ray per cell), and each face is tested only against the rays
  in the cells under its projected bounding box whose image-plane point lies inside that box, like
  a rasteriser's coverage test, but the hit itself is the exact ray/triangle intersection. The
  vertices are projected once per call; only faces crossing the camera plane are clipped at
  ``near`` before their box is taken, so cameras inside a mesh (rooms) work. Any ray set (a
  random pixel subset, distorted cameras) works, as long as all rays leave from one point and lie
  within ``max_angle_deg`` of their mean direction.

:func:`raycast_mesh` picks the fast path when it applies. trimesh's own intersectors were measured
and rejected: its embree backend is not installed and ``trimesh.ray.ray_triangle`` needs ``rtree``,
which is not a dependency. Timings (2 CPU cores, 64x64 rays): see ``tests/rendering/test_mesh_raycast.py``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from san.cameras import RayBundle


@dataclass(frozen=True)
class MeshHits:
    """Nearest intersection of each ray.

    Attributes:
        depth: ``N`` distance along the (unit) ray to the hit, ``inf`` where the ray misses.
        face: ``N`` int64 index of the face hit, ``-1`` where the ray misses.
    """

    depth: torch.Tensor
    face: torch.Tensor

    @property
    def hit(self) -> torch.Tensor:
        """``N`` bool."""
        return self.face >= 0

    def points(self, rays: RayBundle) -> torch.Tensor:
        """``Nx3`` hit points (zeros where the ray misses)."""
        depth = torch.where(self.hit, self.depth, torch.zeros_like(self.depth))
        return (rays.origins + depth[:, None] * rays.directions) * self.hit[:, None]


def load_mesh(path: str | os.PathLike, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(vertices Vx3 float32, faces Fx3 int64)`` of a mesh file (PLY, OBJ, GLB via trimesh)."""
    import trimesh

    mesh = trimesh.load(path, force="mesh", process=False)
    vertices = torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float32, device=device)
    faces = torch.as_tensor(np.asarray(mesh.faces), dtype=torch.int64, device=device)
    return vertices, faces


def ray_triangle_depth(
    origins: torch.Tensor,
    directions: torch.Tensor,
    v0: torch.Tensor,
    v1: torch.Tensor,
    v2: torch.Tensor,
    tol: float = 1e-6,
    t_min: float = 0.0,
) -> torch.Tensor:
    """Moeller-Trumbore, two-sided, broadcasting over the leading dimensions.

    Args:
        origins, directions: ``...x3`` rays.
        v0, v1, v2: ``...x3`` triangle corners.
        tol: barycentric slack so that rays through a shared edge hit one of its two faces.
        t_min: hits closer than this are ignored.

    Returns:
        ``...`` distance along the ray to the hit (``inf`` on a miss); the distance is in units of
        ``|directions|`` (ray length when directions are unit).
    """
    origins, directions, v0, v1, v2 = torch.broadcast_tensors(origins, directions, v0, v1, v2)
    e1, e2 = v1 - v0, v2 - v0
    p = torch.cross(directions, e2, dim=-1)
    det = (e1 * p).sum(-1)
    scale = (e1.norm(dim=-1) * e2.norm(dim=-1) * directions.norm(dim=-1)).clamp_min(1e-30)
    ok = det.abs() > 1e-12 * scale
    inv = 1.0 / torch.where(ok, det, torch.ones_like(det))
    s = origins - v0
    u = (s * p).sum(-1) * inv
    q = torch.cross(s, e1, dim=-1)
    v = (directions * q).sum(-1) * inv
    t = (e2 * q).sum(-1) * inv
    ok = ok & (u >= -tol) & (v >= -tol) & (u + v <= 1 + tol) & (t > t_min)
    return torch.where(ok, t, torch.full_like(t, math.inf))


def _merge(best_t, best_f, t, f):
    """Keep the nearer hit per ray; ties go to the lower face index."""
    better = (t < best_t) | ((t == best_t) & (f < best_f) & (f >= 0))
    return torch.where(better, t, best_t), torch.where(better, f, best_f)


def _nearest_per_ray(ray_idx: torch.Tensor, face_idx: torch.Tensor, t: torch.Tensor, n_rays: int):
    """Reduce ``(ray, face, t)`` candidate triples to the nearest face per ray (``-1`` if none)."""
    best_t = torch.full((n_rays,), math.inf, dtype=t.dtype, device=t.device)
    best_t.scatter_reduce_(0, ray_idx, t, reduce="amin")
    is_best = torch.isfinite(t) & (t == best_t[ray_idx])
    big = torch.iinfo(torch.int64).max
    best_f = torch.full((n_rays,), big, dtype=torch.int64, device=t.device)
    best_f.scatter_reduce_(0, ray_idx[is_best], face_idx[is_best], reduce="amin")
    best_f = torch.where(best_f == big, torch.full_like(best_f, -1), best_f)
    return best_t, best_f


def raycast_mesh_reference(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    rays: RayBundle,
    max_pairs: int = 1 << 22,
    tol: float = 1e-6,
) -> MeshHits:
    """Brute force: every ray against every face, ``max_pairs`` ray/face pairs at a time.

    Args:
        vertices: ``Vx3``. faces: ``Fx3`` int64. rays: ``N`` rays.
    """
    n = len(rays)
    device, dtype = rays.origins.device, rays.origins.dtype
    tri = vertices.to(device, dtype)[faces.to(device)]  # F 3 3
    best_t = torch.full((n,), math.inf, dtype=dtype, device=device)
    best_f = torch.full((n,), -1, dtype=torch.int64, device=device)
    if n == 0 or tri.shape[0] == 0:
        return MeshHits(best_t, best_f)
    face_chunk = max(1, min(tri.shape[0], max_pairs // max(n, 1)))
    ray_chunk = max(1, min(n, max_pairs // face_chunk))
    for r0 in range(0, n, ray_chunk):
        o = rays.origins[r0 : r0 + ray_chunk, None]
        d = rays.directions[r0 : r0 + ray_chunk, None]
        for f0 in range(0, tri.shape[0], face_chunk):
            t_chunk = tri[f0 : f0 + face_chunk]
            t = ray_triangle_depth(o, d, t_chunk[None, :, 0], t_chunk[None, :, 1], t_chunk[None, :, 2], tol)
            tmin, arg = t.min(dim=1)
            f = torch.where(torch.isfinite(tmin), arg + f0, torch.full_like(arg, -1))
            sl = slice(r0, r0 + ray_chunk)
            best_t[sl], best_f[sl] = _merge(best_t[sl], best_f[sl], tmin, f)
    return MeshHits(best_t, best_f)


def _basis(forward: torch.Tensor) -> torch.Tensor:
    """``3x3`` rows ``(right, down, forward)`` orthonormal, for a unit ``forward``."""
    helper = torch.tensor([0.0, 1.0, 0.0], dtype=forward.dtype, device=forward.device)
    if float(forward[1].abs()) > 0.9:
        helper = torch.tensor([1.0, 0.0, 0.0], dtype=forward.dtype, device=forward.device)
    right = torch.linalg.cross(helper, forward)
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    return torch.stack([right, down, forward])


def shares_origin(rays: RayBundle, rel_tol: float = 1e-6) -> bool:
    """Whether all rays leave from the same point (to ``rel_tol`` of its magnitude, at least 1e-6)."""
    if len(rays) == 0:
        return True
    o = rays.origins
    spread = float((o - o[:1]).abs().max())
    return spread <= rel_tol * max(1.0, float(o[0].abs().max()))


def clipped_plane_bounds(tri: torch.Tensor, near: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounding box ``(min Fx2, max Fx2)`` on the image plane ``z = 1`` (``(x / z, y / z)``) of the
    part of each camera-frame triangle ``Fx3x3`` (``z`` forward) in front of the plane
    ``z = near``: its corners in front plus the points where its edges cross the plane. For
    pixel bounds of a pinhole camera, scale by ``(fx, fy)`` and add ``(cx, cy)``."""
    z = tri[..., 2]
    pts, valid = [], []
    for a, b in ((0, 1), (1, 2), (2, 0)):
        za, zb = z[:, a], z[:, b]
        pts.append(tri[:, a])
        valid.append(za > near)
        cross = (za > near) != (zb > near)
        w = ((near - za) / torch.where(cross, zb - za, torch.ones_like(za))).clamp(0, 1)
        p = tri[:, a] + w[:, None] * (tri[:, b] - tri[:, a])
        p[:, 2] = near
        pts.append(p)
        valid.append(cross)
    pts = torch.stack(pts, 1)  # F 6 3
    valid = torch.stack(valid, 1)  # F 6
    xy = pts[..., :2] / pts[..., 2:3].clamp_min(near)
    inf = torch.tensor(math.inf, dtype=tri.dtype, device=tri.device)
    return torch.where(valid[..., None], xy, inf).min(1).values, torch.where(valid[..., None], xy, -inf).max(1).values


def raycast_mesh_binned(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    rays: RayBundle,
    near: float = 1e-6,
    max_pairs: int = 1 << 22,
    max_angle_deg: float = 80.0,
    tol: float = 1e-6,
) -> MeshHits:
    """Fast path for rays from one origin: project faces, bucket rays, test only covered pairs.

    Args:
        vertices: ``Vx3``. faces: ``Fx3`` int64.
        rays: ``N`` rays sharing ``rays.origins[0]`` (see :func:`shares_origin`).
        near: surfaces closer than this to the origin plane (along the mean direction) are clipped.
        max_pairs: candidate ray/face pairs tested at once (memory bound).
        max_angle_deg: largest angle between a ray and the rays' mean direction.

    Returns:
        :class:`MeshHits`, equal to :func:`raycast_mesh_reference`'s up to ties at shared edges.

    Raises:
        ValueError: if the rays do not share an origin or spread wider than ``max_angle_deg``.
    """
    n = len(rays)
    device, dtype = rays.origins.device, rays.origins.dtype
    best_t = torch.full((n,), math.inf, dtype=dtype, device=device)
    best_f = torch.full((n,), -1, dtype=torch.int64, device=device)
    if n == 0 or faces.shape[0] == 0:
        return MeshHits(best_t, best_f)
    if not shares_origin(rays):
        raise ValueError("raycast_mesh_binned: rays do not share one origin (use raycast_mesh_reference)")
    origin = rays.origins[0]
    dirs = rays.directions
    forward = dirs.mean(0)
    forward = forward / forward.norm().clamp_min(1e-12)
    basis = _basis(forward)
    d_cam = dirs @ basis.T  # N 3 (right, down, forward)
    cos_min = float((d_cam[:, 2] / dirs.norm(dim=-1)).min())
    if cos_min < math.cos(math.radians(max_angle_deg)):
        raise ValueError(f"raycast_mesh_binned: rays spread over more than {max_angle_deg} degrees from their mean")
    ray_xy = d_cam[:, :2] / d_cam[:, 2:3]

    # Buckets on the image plane: about one ray per cell.
    lo, hi = ray_xy.min(0).values, ray_xy.max(0).values
    extent = (hi - lo).clamp_min(1e-9)
    cell = float(torch.sqrt(extent[0] * extent[1] / n)) if n > 1 else 1.0
    cell = max(cell, float(extent.max()) / 4096.0, 1e-9)
    gx = int(extent[0] / cell) + 1
    gy = int(extent[1] / cell) + 1
    rc = ((ray_xy - lo) / cell).floor().long()
    rc[:, 0].clamp_(0, gx - 1)
    rc[:, 1].clamp_(0, gy - 1)
    ray_cell = rc[:, 1] * gx + rc[:, 0]
    order = torch.argsort(ray_cell)
    counts = torch.bincount(ray_cell, minlength=gx * gy)
    starts = torch.cumsum(counts, 0) - counts

    # Project faces: bounding box of the part of each triangle in front of the ``near`` plane. The
    # vertices are projected once; only faces crossing the plane (rare) are clipped.
    faces = faces.to(device)
    v_cam = (vertices.to(device, dtype) - origin) @ basis.T  # V 3
    v_xy = v_cam[:, :2] / v_cam[:, 2:3].clamp_min(near)
    n_front = (v_cam[:, 2] > near)[faces].sum(1)  # F
    face_xy = v_xy[faces]  # F 3 2
    bmin, bmax = face_xy.min(1).values, face_xy.max(1).values
    crossing = torch.nonzero((n_front > 0) & (n_front < 3)).squeeze(1)
    if crossing.numel():
        bmin[crossing], bmax[crossing] = clipped_plane_bounds(v_cam[faces[crossing]], near)
    pad = 1e-6 * float(extent.max())
    c0 = ((bmin - lo - pad) / cell).floor().clamp(-1, max(gx, gy) + 1)
    c1 = ((bmax - lo + pad) / cell).floor().clamp(-1, max(gx, gy) + 1)
    c0x, c0y = c0[:, 0].clamp(0, gx - 1), c0[:, 1].clamp(0, gy - 1)
    c1x, c1y = c1[:, 0].clamp(max=gx - 1), c1[:, 1].clamp(max=gy - 1)
    keep = (n_front > 0) & (c1[:, 0] >= 0) & (c1[:, 1] >= 0) & (c0[:, 0] <= gx - 1) & (c0[:, 1] <= gy - 1)
    keep &= (c1x >= c0x) & (c1y >= c0y)
    face_ids = torch.nonzero(keep).squeeze(1)
    if face_ids.numel() == 0:
        return MeshHits(best_t, best_f)
    c0x, c0y, c1x, c1y = (c.long()[face_ids] for c in (c0x, c0y, c1x, c1y))
    wx, wy = c1x - c0x + 1, c1y - c0y + 1

    # Number of candidate rays per face = rays in its covered cells (2D prefix sum over counts).
    grid = counts.view(gy, gx)
    sat = torch.zeros(gy + 1, gx + 1, dtype=torch.int64, device=device)
    sat[1:, 1:] = grid.cumsum(0).cumsum(1)
    per_face = sat[c1y + 1, c1x + 1] - sat[c0y, c1x + 1] - sat[c1y + 1, c0x] + sat[c0y, c0x]
    busy = per_face > 0  # faces over cells without rays need no test
    face_ids, per_face = face_ids[busy], per_face[busy]
    c0x, c0y, wx, wy = c0x[busy], c0y[busy], wx[busy], wy[busy]
    # A ray can only hit a face whose (slightly padded) image-plane box holds the ray's point.
    slack = pad + 1e-5 * (bmax[face_ids] - bmin[face_ids])
    face_lo, face_hi = bmin[face_ids] - slack, bmax[face_ids] + slack
    vertices = vertices.to(device, dtype)
    start = 0
    nf = face_ids.numel()
    while start < nf:
        # Take faces until the chunk's candidate pairs reach max_pairs (at least one face).
        cum = torch.cumsum(per_face[start:], 0)
        stop = start + max(1, int(torch.searchsorted(cum, torch.tensor(max_pairs, device=device), right=True)))
        sl = slice(start, stop)
        start_sl, start = start, stop
        # (face, cell) pairs.
        ncell = wx[sl] * wy[sl]
        f_local = torch.repeat_interleave(torch.arange(ncell.numel(), device=device), ncell)
        k = torch.arange(f_local.numel(), device=device) - (torch.cumsum(ncell, 0) - ncell)[f_local]
        cx = c0x[sl][f_local] + k % wx[sl][f_local]
        cy = c0y[sl][f_local] + k // wx[sl][f_local]
        cell_id = cy * gx + cx
        cnt = counts[cell_id]
        if int(cnt.sum()) == 0:
            continue
        # (face, ray) pairs.
        pair_fc = torch.repeat_interleave(torch.arange(cell_id.numel(), device=device), cnt)
        j = torch.arange(pair_fc.numel(), device=device) - (torch.cumsum(cnt, 0) - cnt)[pair_fc]
        ray_idx = order[starts[cell_id[pair_fc]] + j]
        face_local = start_sl + f_local[pair_fc]
        xy = ray_xy[ray_idx]
        inside = ((xy >= face_lo[face_local]) & (xy <= face_hi[face_local])).all(1)
        ray_idx, face_idx = ray_idx[inside], face_ids[face_local[inside]]
        tv = vertices[faces[face_idx]]
        t = ray_triangle_depth(rays.origins[ray_idx], dirs[ray_idx], tv[:, 0], tv[:, 1], tv[:, 2], tol)
        ct, cf = _nearest_per_ray(ray_idx, face_idx, t, n)
        best_t, best_f = _merge(best_t, best_f, ct, cf)
    return MeshHits(best_t, best_f)


def raycast_mesh(vertices: torch.Tensor, faces: torch.Tensor, rays: RayBundle, **kwargs) -> MeshHits:
    """Nearest hit per ray: :func:`raycast_mesh_binned` when the rays share an origin and a
    direction cone, else :func:`raycast_mesh_reference`."""
    if shares_origin(rays):
        try:
            return raycast_mesh_binned(vertices, faces, rays, **kwargs)
        except ValueError:
            pass
    kwargs.pop("near", None)
    kwargs.pop("max_angle_deg", None)
    return raycast_mesh_reference(vertices, faces, rays, **kwargs)
