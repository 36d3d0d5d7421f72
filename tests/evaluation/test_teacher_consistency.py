"""The warp behind the 3D-consistency ceiling (san.evaluation.consistency), on a synthetic scene:
cameras looking straight down at the plane z = 0, feature maps painted from a known function of the
3D point under each cell centre (3D-consistent) or of the cell index (view-locked)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from san.cameras import Camera, intrinsics_matrix
from san.data.colmap import ColmapCamera, image_from_c2w, write_model_text
from san.data.scene import SceneError
from san.evaluation.consistency import (
    DepthView,
    FeatureView,
    consensus_consistency,
    load_depth_views,
    nearest_views,
    pair_consistency,
    pooled,
)
from san.imitation.geometry import feature_camera

W, H, F_PX, HEIGHT = 32, 24, 28.0, 2.0
INPUT_SIZE = 64  # the 32x24 image becomes 64x48 padded to 64x64: the bottom quarter of each map is padding
MAP_SIZES = (16, 8)
K = intrinsics_matrix(F_PX, F_PX, W / 2, H / 2)
DOWN = np.diag([1.0, -1.0, -1.0])  # OpenCV camera looking along world -z, image x along world +x


def camera(x: float, y: float) -> Camera:
    c2w = np.eye(4)
    c2w[:3, :3] = DOWN
    c2w[:3, 3] = (x, y, HEIGHT)
    return Camera(c2w, K, W, H)


def plane_depth(cam: Camera) -> np.ndarray:
    """Distance along each pixel-centre ray to z = 0 (straight down: ``HEIGHT * |(xn, yn, 1)|``)."""
    xs, ys = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    xn, yn = (xs - K[0, 2]) / K[0, 0], (ys - K[1, 2]) / K[1, 1]
    return HEIGHT * np.sqrt(xn**2 + yn**2 + 1)


def smooth(points: torch.Tensor) -> torch.Tensor:
    """A 3D-consistent feature: smooth in the world point (wavelengths 2.4-2.9 m; cells are 0.14 m and
    0.29 m, a view sees 2.3 m x 1.7 m of the plane)."""
    x, y = points[:, 0], points[:, 1]
    return torch.stack([torch.sin(2.6 * x) + 1.5, torch.cos(2.2 * y) - 0.3, 2 * x * y, 2 * (x - y)], 1)


def feature_view(cam: Camera, paint, depth_scale: float = 1.0) -> FeatureView:
    """Maps of every size in MAP_SIZES painted by ``paint(points Px3, cells Px2) -> PxC`` at the
    world points under the cell centres (padding cells zero)."""
    maps = []
    for n in MAP_SIZES:
        fc = feature_camera(cam.K, W, H, INPUT_SIZE, (n, n))
        vh, vw = fc.valid_hw
        cells, _ = fc.pixels()
        Kf = fc.K.double()
        xn = (cells[:, 0].double() - Kf[0, 2]) / Kf[0, 0]
        yn = (cells[:, 1].double() - Kf[1, 2]) / Kf[1, 1]
        points = torch.stack([cam.c2w[0, 3] + HEIGHT * xn, cam.c2w[1, 3] - HEIGHT * yn, torch.zeros_like(xn)], 1)
        feats = paint(points, cells).float()
        m = torch.zeros(feats.shape[1], n, n)
        m[:, :vh, :vw] = feats.T.reshape(-1, vh, vw)
        maps.append(m)
    view = DepthView("v", cam, np.zeros((H, W, 3), np.float32), plane_depth(cam) * depth_scale)
    return FeatureView(view, cam, INPUT_SIZE, maps)


def test_identity_pair_is_exact():
    a = feature_view(camera(0.0, 0.0), lambda p, c: smooth(p))
    for row, n in zip(pair_consistency(a, a), MAP_SIZES):
        assert row["cells"] == row["cells_valid"] == n * (3 * n // 4)  # every valid cell, padding excluded
        assert row["cosine_warp"] == pytest.approx(1.0, abs=1e-6)
        assert row["cosine_same_cell"] == pytest.approx(1.0, abs=1e-6)


def test_translated_pair_of_a_3d_consistent_feature():
    a = feature_view(camera(0.0, 0.0), lambda p, c: smooth(p))
    b = feature_view(camera(0.3, 0.1), lambda p, c: smooth(p))  # 4.2 px / 1.4 px shift: not a whole cell
    for row in pair_consistency(a, b):
        assert 0 < row["cells"] < row["cells_valid"]  # cells that leave B's image are dropped
        assert row["cosine_warp"] > 0.995  # bilinear sampling of B's cells is the only error
        # Each view's own mean is subtracted, and the two views see different parts of the plane.
        assert row["cosine_warp_centred"] > 0.95
        assert row["cosine_warp"] > row["cosine_same_cell"]
        assert row["cosine_warp_centred"] > row["cosine_same_cell_centred"] + 0.05
        assert row["cosine_warp_centred"] > row["cosine_shuffled_centred"] + 0.5


def test_view_locked_feature_is_caught():
    noise = {n: torch.randn(4, n * n, generator=torch.Generator().manual_seed(n)) for n in MAP_SIZES}

    def locked(points, cells):  # a function of the cell index only, like an absolute position embedding
        n = int(cells[:, 0].max() + 0.5)  # valid width = map width (the image's long side is x)
        idx = (cells[:, 1].long() * n + cells[:, 0].long()).clamp(max=n * n - 1)
        return noise[n][:, idx].T

    a = feature_view(camera(0.0, 0.0), locked)
    b = feature_view(camera(0.3, 0.1), locked)
    for row in pair_consistency(a, b):
        assert row["cosine_same_cell"] == pytest.approx(1.0, abs=1e-6)
        assert row["cosine_warp"] < 0.6


def test_occluded_points_are_rejected():
    a = feature_view(camera(0.0, 0.0), lambda p, c: smooth(p))
    b = feature_view(camera(0.3, 0.1), lambda p, c: smooth(p), depth_scale=0.95)  # something 5 % in front
    for row in pair_consistency(a, b):
        assert row["cells"] == 0
        assert row["cosine_warp"] is None


def test_consensus_of_3d_consistent_views():
    a = feature_view(camera(0.0, 0.0), lambda p, c: smooth(p))
    others = [feature_view(camera(x, y), lambda p, c: smooth(p)) for x, y in ((0.3, 0.1), (-0.2, 0.2), (0.1, -0.3))]
    for row in consensus_consistency(a, others, min_views=2):
        assert row["cells"] > 0 and 2 <= row["mean_views"] <= 3
        assert row["cosine"] > 0.999 and row["cosine_unit"] > 0.999
    # Distances 0.316, 0.283, 0.316: nearest first, ties in index order.
    assert nearest_views([o.view for o in [a, *others]], 0, 2) == [2, 1]
    assert pooled([{"c": 1.0, "cells": 1}, {"c": 0.0, "cells": 3}, {"c": None, "cells": 2}], "c") == 0.25


def test_scene_folder_with_a_bad_depth_map(tmp_path):
    cam = camera(0.0, 0.0)
    write_model_text(
        tmp_path / "sparse" / "0",
        [ColmapCamera(1, "PINHOLE", W, H, (F_PX, F_PX, W / 2, H / 2))],
        [image_from_c2w(1, cam.c2w, 1, "view_000.png")],
    )
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "images" / "view_000.png")
    with pytest.raises(SceneError, match="no ground-truth depth"):
        load_depth_views(tmp_path)
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "view_000.npy", plane_depth(cam)[:-1])
    with pytest.raises(SceneError, match=r"view_000\.npy: depth is"):
        load_depth_views(tmp_path)
    np.save(tmp_path / "depth" / "view_000.npy", plane_depth(cam).astype(np.float32))
    (view,) = load_depth_views(tmp_path)
    assert view.split == "test" and np.allclose(view.camera.c2w, cam.c2w)
