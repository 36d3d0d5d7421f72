"""3D-consistency ceiling of a teacher's feature maps: how well ANY 3D feature field could imitate them.

A feature field renders one feature per 3D point, the same from every view. Part of a teacher's
feature may instead depend on where the image grid or the patch grid falls ("view-locked": an
absolute position embedding, padding effects, patch aliasing); no 3D field can reproduce that part.
This module measures the 3D-consistent part with exact ground-truth geometry (a scene folder with
per-view depth, such as the demo scene of :mod:`san.data.demo`):

* **Lift.** The valid cells of view A's map (the top-left cells that see the image,
  :func:`san.imitation.geometry.feature_camera`) are lifted to 3D at their cell centres with A's
  ground-truth depth. The depth is interpolated bilinearly in *inverse camera z* at the cell centre
  (exact on planar surfaces, where ``1/z`` is affine in pixel coordinates); a cell whose 2x2
  neighbourhood of depth pixels spans more than ``edge_tol`` (relative) sits on a depth edge and is
  skipped.
* **Warp.** Each 3D point is projected into view B; points outside B's image, behind it, or
  occluded there (B's ground-truth depth at the projection differs from the point's by more than
  ``depth_tol``, relative) are rejected. B's map is sampled bilinearly (on its valid cells, border
  clamped) at the projection.
* **Pair scores** per map: mean cosine between A's feature and the warped B feature over the
  matched cells; the same after subtracting each view's mean feature over its valid cells
  (``centred``: the signal left once a constant mean is removed); and two baselines on the same
  cells: B's feature at the *same cell index* (no warp; high when the map is view-locked or
  constant) and at a seeded *shuffled* valid cell of B (what a constant mean alone gives).
* **Consensus ceiling** (:func:`consensus_consistency`): for a held-out view A, the mean of the warped
  features of every other view that sees the point unoccluded is what a least-squares 3D field
  trained on those views converges to at that point (infinite capacity, no view dependence); its
  cosine to A's feature is the best held-out cosine a 3D-consistent field trained on those views
  can expect on those cells (the mean of the unit features, the cosine-trained optimum, is
  reported beside it).

Conventions: :mod:`san.cameras` (OpenCV ``c2w``, pixel centres at ``+0.5``); depth maps are the
*distance along the unit ray* through each pixel centre (:mod:`san.data.demo.write`), converted
here to camera ``z``. The teacher sees the image at the pipeline's protocol
(:func:`encode_depth_view`, as :func:`san.features.build.cache_features`: longest side resized to
``render_size``, quantised to uint8, then :meth:`~san.teachers.base.Teacher.encode`).
Limitations: features are point-sampled at cell centres (a cell aggregates a patch); cells on depth
edges are skipped, so the ceiling holds for the smooth-surface cells, which are the easier ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from san.cameras import Camera
from san.data.colmap import load_colmap
from san.data.images import load_image
from san.data.prepare import assign_every_nth
from san.data.scene import SceneError
from san.imitation.geometry import FeatureCamera, feature_camera

DEPTH_TOL = 0.02
"""Relative depth difference above which a warped point counts as occluded in the other view."""
EDGE_TOL = 0.05
"""Relative spread of a cell centre's 2x2 depth pixels above which it sits on a depth edge."""


@dataclass(frozen=True)
class DepthView:
    """One view of a scene with exact depth.

    Attributes:
        name: image file stem, e.g. ``view_000``.
        camera: pinhole :class:`~san.cameras.Camera` at the image/depth size (world frame of the scene).
        image: ``HxWx3`` float32 in ``[0, 1]``.
        depth: ``HxW`` float64 distance along the unit ray through each pixel centre (world units).
        split: ``"train"`` or ``"test"`` (every ``test_every``-th view by name, as the pipeline).
    """

    name: str
    camera: Camera
    image: np.ndarray
    depth: np.ndarray
    split: str = "train"


@dataclass(frozen=True)
class FeatureView:
    """A :class:`DepthView`'s teacher maps and where they sit.

    Attributes:
        view: the depth view.
        encoded_camera: the camera of the image the teacher saw (``render_size``).
        input_size: the teacher's padded square input side (``TeacherInfo.input_size``).
        maps: per map ``Cxhxw`` float32 (CPU), the whole padded map.
    """

    view: DepthView
    encoded_camera: Camera
    input_size: int
    maps: list[torch.Tensor]

    def feature_camera(self, i: int) -> FeatureCamera:
        """Map ``i`` as a camera in cell units (:func:`~san.imitation.geometry.feature_camera`)."""
        cam = self.encoded_camera
        return feature_camera(cam.K, cam.width, cam.height, self.input_size, self.maps[i].shape[1:])

    def valid_cells(self, i: int) -> torch.Tensor:
        """``PxC`` features of map ``i``'s valid cells, row-major."""
        vh, vw = self.feature_camera(i).valid_hw
        m = self.maps[i]
        return m[:, :vh, :vw].reshape(m.shape[0], -1).T


# ------------------------------------------------------------------------------------ loading


def load_depth_views(scene_dir: str | os.PathLike, test_every: int = 8) -> list[DepthView]:
    """The views of a scene folder with ground-truth depth: ``images/``, a COLMAP model in
    ``sparse/0`` (read by :func:`san.data.colmap.load_colmap`, world frame unchanged) and
    ``depth/{stem}.npy`` per image (distance along the ray, the demo scene's layout).

    Raises:
        SceneError: naming the file for a missing depth map, a shape that differs from its image,
            or non-finite / non-positive depth.
    """
    scene_dir = Path(scene_dir)
    capture = load_colmap(scene_dir)
    frames = assign_every_nth(capture.frames, test_every)
    views = []
    for frame in frames:
        stem = Path(frame.image).stem
        path = scene_dir / "depth" / f"{stem}.npy"
        if not path.is_file():
            raise SceneError(f"{path}: no ground-truth depth for image {Path(frame.image).name}")
        depth = np.load(path).astype(np.float64)
        cam = Camera.of(frame)
        if depth.shape != (cam.height, cam.width):
            raise SceneError(f"{path}: depth is {depth.shape}, its image is {cam.height}x{cam.width}")
        if not np.isfinite(depth).all() or (depth <= 0).any():
            raise SceneError(f"{path}: depth must be finite and positive everywhere")
        views.append(DepthView(stem, cam, load_image(frame.image), depth, frame.split))
    return views


@torch.no_grad()
def encode_depth_view(teacher, view: DepthView, render_size: int | None) -> FeatureView:
    """Encode a view at the pipeline's protocol: the image resized so that its longest side is
    ``render_size`` (bilinear, antialiased; ``None`` keeps it), quantised to uint8 as
    :func:`san.features.build.cache_features` does, then ``teacher.encode``."""
    cam = view.camera if render_size is None else view.camera.resized(render_size)
    x = torch.from_numpy(np.ascontiguousarray(view.image)).permute(2, 0, 1)[None].float()
    if (cam.height, cam.width) != tuple(x.shape[-2:]):
        x = F.interpolate(x, (cam.height, cam.width), mode="bilinear", align_corners=False, antialias=True)
    x = (x.clamp(0, 1) * 255).round() / 255
    maps = [m[0].float().cpu() for m in teacher.encode(x)]
    return FeatureView(view, cam, int(teacher.info.input_size), maps)


def image_feature_view(fv: FeatureView) -> FeatureView:
    """A reference "teacher" that is 3D-consistent up to shading and sampling: the image the teacher
    saw, placed in the padded square input like :meth:`~san.teachers.base.Teacher.preprocess`
    (resized, zero-padded) and area-pooled onto each map's cells, as 4 channels (RGB and a constant
    1). Scored like the teacher's maps, it shows what the warp itself keeps of a consistent signal."""
    from san.teachers.base import resized_hw

    cam = fv.encoded_camera
    x = torch.from_numpy(np.ascontiguousarray(fv.view.image)).permute(2, 0, 1)[None].float()
    if (cam.height, cam.width) != tuple(x.shape[-2:]):
        x = F.interpolate(x, (cam.height, cam.width), mode="bilinear", align_corners=False, antialias=True)
    x = torch.cat([(x.clamp(0, 1) * 255).round() / 255, torch.ones_like(x[:, :1])], 1)
    rh, rw = resized_hw((cam.height, cam.width), fv.input_size)
    x = F.interpolate(x, (rh, rw), mode="bilinear", align_corners=False, antialias=True)
    x = F.pad(x, (0, fv.input_size - rw, 0, fv.input_size - rh))
    maps = [F.adaptive_avg_pool2d(x, tuple(m.shape[1:]))[0] for m in fv.maps]
    return FeatureView(fv.view, cam, fv.input_size, maps)


# ------------------------------------------------------------------------------------ geometry


def _z_depth(view: DepthView) -> torch.Tensor:
    """``HxW`` camera z of the view's ray-distance depth (float64)."""
    cam = view.camera
    K = torch.as_tensor(cam.K)
    ys, xs = torch.meshgrid(
        torch.arange(cam.height, dtype=torch.float64) + 0.5,
        torch.arange(cam.width, dtype=torch.float64) + 0.5,
        indexing="ij",
    )
    xn, yn = (xs - K[0, 2]) / K[0, 0], (ys - K[1, 2]) / K[1, 1]
    return torch.as_tensor(view.depth) / torch.sqrt(xn**2 + yn**2 + 1)


def sample_z(z: torch.Tensor, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera z at continuous pixel coordinates, bilinear in ``1/z`` (exact on planes).

    Args:
        z: ``HxW`` positive camera z per pixel.
        pixels: ``Px2`` ``(x, y)``, pixel centres at ``+0.5``; clamped to the outermost centres.

    Returns:
        ``(z P, spread P)``: the interpolated z and ``max / min - 1`` over the 2x2 pixels used.
    """
    h, w = z.shape
    x = (pixels[:, 0] - 0.5).clamp(0, w - 1)
    y = (pixels[:, 1] - 0.5).clamp(0, h - 1)
    x0, y0 = x.floor().long().clamp(max=w - 2 if w > 1 else 0), y.floor().long().clamp(max=h - 2 if h > 1 else 0)
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    fx, fy = (x - x0).to(z.dtype), (y - y0).to(z.dtype)
    corners = torch.stack([z[y0, x0], z[y0, x1], z[y1, x0], z[y1, x1]], -1)
    inv = 1 / corners
    weights = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], -1)
    out = 1 / (inv * weights).sum(-1)
    spread = corners.max(-1).values / corners.min(-1).values - 1
    return out, spread


def _cells_to_pixels(fc: FeatureCamera, cells: torch.Tensor, K: np.ndarray) -> torch.Tensor:
    """Cell-unit coordinates of a feature camera -> pixel coordinates of the camera with ``K``."""
    Kf = fc.K.double()
    K = torch.as_tensor(K, dtype=torch.float64)
    xn = (cells[:, 0] - Kf[0, 2]) / Kf[0, 0]
    yn = (cells[:, 1] - Kf[1, 2]) / Kf[1, 1]
    return torch.stack([xn * K[0, 0] + K[0, 2], yn * K[1, 1] + K[1, 2]], -1)


def lift_cells(fv: FeatureView, i: int, z: torch.Tensor | None = None, edge_tol: float = EDGE_TOL):
    """World points of map ``i``'s valid cell centres.

    Returns:
        ``(valid P bool, points Px3 float64)`` over the valid cells (row-major, the order of
        :meth:`FeatureView.valid_cells`); ``valid`` is False on depth edges.
    """
    fc = fv.feature_camera(i)
    cells, _ = fc.pixels()
    cam = fv.view.camera
    z = _z_depth(fv.view) if z is None else z
    px = _cells_to_pixels(fc, cells.double(), cam.K)
    depth, spread = sample_z(z, px)
    K = torch.as_tensor(cam.K)
    xn, yn = (px[:, 0] - K[0, 2]) / K[0, 0], (px[:, 1] - K[1, 2]) / K[1, 1]
    local = torch.stack([xn * depth, yn * depth, depth], -1)
    c2w = torch.as_tensor(cam.c2w)
    return spread <= edge_tol, local @ c2w[:3, :3].T + c2w[:3, 3]


def sample_at_points(
    fv: FeatureView, i: int, points: torch.Tensor, z: torch.Tensor | None = None, depth_tol: float = DEPTH_TOL
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map ``i`` of a view sampled at world points it sees.

    Args:
        points: ``Px3`` world points (float64).

    Returns:
        ``(seen P bool, features PxC float32)``: ``seen`` is False for points behind the camera,
        outside its image, or occluded (ground-truth depth differs by more than ``depth_tol``,
        relative); features are bilinear on the valid cells (border clamped), zero where not seen.
    """
    cam = fv.view.camera
    z = _z_depth(fv.view) if z is None else z
    px, pz = cam.project(points)
    inside = (pz > 0) & (px[:, 0] >= 0) & (px[:, 0] <= cam.width) & (px[:, 1] >= 0) & (px[:, 1] <= cam.height)
    z_gt, _ = sample_z(z, px)
    seen = inside & ((z_gt - pz).abs() <= depth_tol * pz.abs())
    fc = fv.feature_camera(i)
    Kf = fc.K.double()
    K = torch.as_tensor(cam.K)
    u = (px[:, 0] - K[0, 2]) / K[0, 0] * Kf[0, 0] + Kf[0, 2]
    v = (px[:, 1] - K[1, 2]) / K[1, 1] * Kf[1, 1] + Kf[1, 2]
    vh, vw = fc.valid_hw
    grid = torch.stack([2 * u / vw - 1, 2 * v / vh - 1], -1).float()[None, None]
    crop = fv.maps[i][None, :, :vh, :vw].float()
    feats = F.grid_sample(crop, grid, mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0].T
    return seen, torch.where(seen[:, None], feats, torch.zeros_like(feats))


# ------------------------------------------------------------------------------------ scores


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.double(), b.double(), dim=1, eps=1e-12)


def _mean(x: torch.Tensor) -> float | None:
    return float(x.mean()) if x.numel() else None


def pair_consistency(
    a: FeatureView,
    b: FeatureView,
    seed: int = 0,
    depth_tol: float = DEPTH_TOL,
    edge_tol: float = EDGE_TOL,
) -> list[dict[str, Any]]:
    """Per map, A's valid cells against B (module docstring, "Pair scores").

    Returns:
        One dict per map: ``cells_valid`` (A's valid cells), ``cells`` (matched: lifted off depth
        edges and seen unoccluded by B), ``cosine_warp``, ``cosine_same_cell``,
        ``cosine_shuffled`` and each with ``_centred`` (means over the matched cells; ``None``
        when nothing matched).
    """
    za, zb = _z_depth(a.view), _z_depth(b.view)
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(len(a.maps)):
        fa = a.valid_cells(i)
        ok, points = lift_cells(a, i, za, edge_tol)
        seen, warped = sample_at_points(b, i, points, zb, depth_tol)
        keep = ok & seen
        fb = b.valid_cells(i)
        mean_a, mean_b = fa.mean(0), fb.mean(0)
        # Same cell index in B (both maps have the same size; the index is A's valid cell's).
        vh, vw = a.feature_camera(i).valid_hw
        bh, bw = b.feature_camera(i).valid_hw
        ys, xs = torch.meshgrid(torch.arange(vh), torch.arange(vw), indexing="ij")
        ys, xs = ys.reshape(-1), xs.reshape(-1)
        same_ok = (ys < bh) & (xs < bw)
        same = b.maps[i][:, ys.clamp(max=bh - 1), xs.clamp(max=bw - 1)].T
        shuffled = fb[torch.randint(fb.shape[0], (fa.shape[0],), generator=g)]
        k_same = keep & same_ok
        out.append(
            {
                "cells_valid": int(fa.shape[0]),
                "cells": int(keep.sum()),
                "cosine_warp": _mean(_cos(fa[keep], warped[keep])),
                "cosine_warp_centred": _mean(_cos(fa[keep] - mean_a, warped[keep] - mean_b)),
                "cosine_same_cell": _mean(_cos(fa[k_same], same[k_same])),
                "cosine_same_cell_centred": _mean(_cos(fa[k_same] - mean_a, same[k_same] - mean_b)),
                "cosine_shuffled": _mean(_cos(fa[keep], shuffled[keep])),
                "cosine_shuffled_centred": _mean(_cos(fa[keep] - mean_a, shuffled[keep] - mean_b)),
            }
        )
    return out


def consensus_consistency(
    anchor: FeatureView,
    others: Sequence[FeatureView],
    min_views: int = 2,
    depth_tol: float = DEPTH_TOL,
    edge_tol: float = EDGE_TOL,
) -> list[dict[str, Any]]:
    """Per map, the consensus ceiling of a held-out view (module docstring).

    For each of the anchor's valid cells off depth edges, the mean of the warped features of the
    ``others`` that see its 3D point unoccluded (at least ``min_views`` of them) is compared with
    the anchor's feature.

    Returns:
        One dict per map: ``cells_valid``, ``cells`` (cells seen by at least ``min_views``),
        ``mean_views`` (views averaged per such cell), ``cosine`` (raw features: the figure the
        imitation bar is stated in), ``cosine_unit`` (the mean of the *unit* warped features
        instead, the direction that maximises the mean cosine to the training views: a field
        trained on cosine rather than MSE) and ``cosine_centred`` (each view's mean over its valid
        cells subtracted first); ``None`` when no cell qualifies.
    """
    za = _z_depth(anchor.view)
    zs = [_z_depth(o.view) for o in others]
    out = []
    for i in range(len(anchor.maps)):
        fa = anchor.valid_cells(i)
        ok, points = lift_cells(anchor, i, za, edge_tol)
        total = torch.zeros(fa.shape, dtype=torch.float64)
        total_c = torch.zeros(fa.shape, dtype=torch.float64)
        total_u = torch.zeros(fa.shape, dtype=torch.float64)
        count = torch.zeros(fa.shape[0], dtype=torch.float64)
        for o, z in zip(others, zs):
            seen, warped = sample_at_points(o, i, points, z, depth_tol)
            seen = seen & ok
            w = seen.double()[:, None]
            total += w * warped.double()
            total_c += w * (warped.double() - o.valid_cells(i).double().mean(0))
            total_u += w * F.normalize(warped.double(), dim=1, eps=1e-12)
            count += seen.double()
        keep = count >= min_views
        mean = total[keep] / count[keep, None]
        mean_c = total_c[keep] / count[keep, None]
        out.append(
            {
                "cells_valid": int(fa.shape[0]),
                "cells": int(keep.sum()),
                "mean_views": _mean(count[keep]),
                "cosine": _mean(_cos(fa[keep], mean)),
                "cosine_unit": _mean(_cos(fa[keep], total_u[keep])),
                "cosine_centred": _mean(_cos(fa[keep] - fa.mean(0), mean_c)),
            }
        )
    return out


def nearest_views(views: Sequence[DepthView], index: int, k: int, among: Sequence[int] | None = None) -> list[int]:
    """Indices of the ``k`` views (of ``among``, default all) whose camera centres are nearest to
    view ``index``'s, nearest first, excluding itself."""
    centres = np.stack([v.camera.c2w[:3, 3] for v in views])
    pool = [j for j in (range(len(views)) if among is None else among) if j != index]
    d = np.linalg.norm(centres[pool] - centres[index], axis=1)
    return [pool[j] for j in np.argsort(d, kind="stable")[:k]]


def pooled(rows: Sequence[dict[str, Any]], key: str, weight: str = "cells") -> float | None:
    """Cell-weighted mean of ``key`` over per-pair (or per-anchor) rows of one map (rows with no
    cell or a ``None`` value are skipped)."""
    pairs = [(r[key], r[weight]) for r in rows if r[key] is not None and r[weight]]
    if not pairs:
        return None
    return float(sum(v * n for v, n in pairs) / sum(n for _, n in pairs))
