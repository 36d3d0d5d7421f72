"""Face-id z-buffer of a triangle mesh (pure torch, CPU or GPU): :func:`rasterize_faces`.

Every face is intersected (Moeller-Trumbore) with the rays of the pixel centres inside its
projected bounding box; the nearest hit per pixel wins (one ``scatter_reduce(amin)`` over keys
that pack the float32 distance above the face id). Intersecting the real pixel rays makes the
z-buffer depth the distance along the ray (the same depth a NeRF renders) and handles lens
distortion (boxes grown by a pixel) and faces that cross the camera plane (the box of their part in
front of it; the whole image with distortion). Faces entirely behind the camera are culled; there
is no back-face culling (extracted meshes need not be consistently oriented).

Beside it, :mod:`san.rendering.mesh_raycast` casts one surface point per ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from san.cameras import as_tensor, pixel_grid, project_points, rays_from_pixels
from san.rendering.mesh_raycast import clipped_plane_bounds

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


def mesh_arrays(vertices, faces) -> tuple[torch.Tensor, torch.Tensor]:
    """``(vertices Vx3 float64, faces Fx3 int64)`` CPU tensors of any array-like mesh; raises
    ``ValueError`` when a face indexes a vertex that does not exist."""
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
    v, f = mesh_arrays(vertices, faces)
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
