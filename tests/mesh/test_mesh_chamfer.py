"""Chamfer distance and the ground-truth comparison region."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import trimesh

from san.cameras import generate_rays, intrinsics_matrix, look_at
from san.mesh.chamfer import (
    DepthView,
    chamfer_distance,
    evaluate_against_ground_truth,
    load_ground_truth,
    sample_surface_in_box,
    visible_in_depth_views,
)


def square(size: float = 1.0, z: float = 0.0) -> trimesh.Trimesh:
    h = size / 2
    v = np.array([[-h, -h, z], [h, -h, z], [h, h, z], [-h, h, z]])
    return trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False)


def test_mesh_to_itself_is_zero():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    d = chamfer_distance(sphere, sphere, n_samples=20_000)
    # Different samples on the same surface: only (a fraction of) the sample spacing remains.
    spacing = np.sqrt(sphere.area / 20_000)
    assert d["symmetric"] < 0.6 * spacing and d["a_to_b"] >= 0 and d["b_to_a"] >= 0
    assert d["symmetric"] == pytest.approx(0.5 * (d["a_to_b"] + d["b_to_a"]))


def test_shifted_copy_measures_the_shift():
    a, b = square(), square(z=0.05)
    d = chamfer_distance(a, b, n_samples=40_000)
    assert d["a_to_b"] == pytest.approx(0.05, rel=0.03)
    assert d["b_to_a"] == pytest.approx(0.05, rel=0.03)
    assert d["symmetric"] == pytest.approx(0.05, rel=0.03)


def test_region_crops_both_meshes():
    # A big ground disk made of long thin fan triangles plus an object: inside the region only the
    # object and a patch of ground count, and the samples are uniform by area there.
    n = 64
    ang = 2 * np.pi * np.arange(n) / n
    ring = np.stack([np.cos(ang), np.sin(ang), np.zeros(n)], -1) * 12
    i = np.arange(n)
    ground = trimesh.Trimesh(
        np.concatenate([np.zeros((1, 3)), ring]), np.stack([0 * i, 1 + i, 1 + (i + 1) % n], -1), process=False
    )
    region = np.array([[-1.0, -1.0, -0.05], [1.0, 1.0, 1.0]])
    pts = sample_surface_in_box(ground, 10_000, region)
    assert len(pts) == 10_000 and (np.abs(pts[:, :2]) <= 1).all()
    # Uniform over the 2x2 patch: each quadrant gets about a quarter.
    quarter = ((pts[:, 0] > 0) & (pts[:, 1] > 0)).mean()
    assert quarter == pytest.approx(0.25, abs=0.03)
    # Extra geometry outside the region (a far wall) changes nothing.
    wall = trimesh.creation.box(extents=[0.2, 4, 4])
    wall.apply_translation([5, 0, 0])
    with_wall = trimesh.util.concatenate([ground, wall])
    r = evaluate_against_ground_truth(with_wall, [ground], bbox_diag=3.0, region=region, n_samples=20_000)
    assert r["chamfer_fraction"] < 0.01 and r["passed"]
    # Without the region the wall dominates.
    far = evaluate_against_ground_truth(with_wall, [ground], bbox_diag=3.0, n_samples=20_000)
    assert far["chamfer_symmetric"] > 10 * r["chamfer_symmetric"]


def test_evaluate_reports_fraction_and_bar():
    a, b = square(2.0), square(2.0, z=0.1)
    r = evaluate_against_ground_truth(a, [b], bbox_diag=2.0, n_samples=20_000, bar=0.02)
    assert r["chamfer_fraction"] == pytest.approx(0.05, rel=0.05)
    assert r["passed"] is False
    with pytest.raises(ValueError, match="no ground-truth meshes"):
        evaluate_against_ground_truth(a, [], bbox_diag=1.0)


def test_load_ground_truth(tmp_path):
    with pytest.raises(FileNotFoundError, match="scene_gt.json"):
        load_ground_truth(tmp_path)
    (tmp_path / "scene_gt.json").write_text(json.dumps({"region_of_interest": [[-1, -1, -1], [1, 1, 1]]}))
    with pytest.raises(FileNotFoundError, match="meshes"):
        load_ground_truth(tmp_path)
    (tmp_path / "meshes").mkdir()
    trimesh.creation.box().export(tmp_path / "meshes" / "box.ply")
    gt = load_ground_truth(tmp_path)
    assert gt.names == ("box",) and gt.bbox_diag == pytest.approx(2 * np.sqrt(3))
    (tmp_path / "scene_gt.json").write_text(json.dumps({"region_of_interest": [[1, 1, 1], [-1, -1, -1]]}))
    with pytest.raises(ValueError, match="scene_gt.json: region_of_interest"):
        load_ground_truth(tmp_path)


def _top_down_view(size: int = 64, height: float = 5.0, box_half: float = 0.3, box_top: float = 0.4):
    """A camera at ``(0, 0, height)`` looking down on a ground plane with a box ``|x|, |y| <
    box_half`` up to ``box_top``; exact depth (distance along each pixel-centre ray)."""
    f = size / 2 / np.tan(np.radians(25))
    K = intrinsics_matrix(f, f, size / 2, size / 2)
    c2w = look_at(np.array([0.0, 0.0, height]), np.zeros(3), np.array([0.0, 1.0, 0.0]))
    rays = generate_rays(torch.tensor(c2w), torch.tensor(K), size, size)
    o, d = rays.origins.numpy(), rays.directions.numpy()
    t_ground = -o[:, 2] / d[:, 2]
    t_top = (box_top - o[:, 2]) / d[:, 2]
    hit_top = np.all(np.abs((o + t_top[:, None] * d)[:, :2]) < box_half, axis=1)
    depth = np.where(hit_top, t_top, t_ground).reshape(size, size).astype(np.float32)
    return c2w, K, depth


def test_hidden_ground_truth_is_not_counted(tmp_path):
    c2w, K, depth = _top_down_view()
    view = DepthView(c2w, K, depth)
    pts = np.array(
        [[0.0, 0.0, 0.0], [0.1, -0.2, 0.0], [1.0, 0.5, 0.0], [0.0, 0.0, 0.4], [0.0, 0.0, 2.0], [9.0, 0.0, 0.0]]
    )
    assert visible_in_depth_views(pts, [view]).tolist() == [False, False, True, True, False, False]

    ground = square(2.0)
    box = trimesh.creation.box(extents=[0.6, 0.6, 0.4])
    box.apply_translation([0, 0, 0.2])
    region = [[-1, -1, -0.05], [1, 1, 1]]
    # A perfect reconstruction: the box without its bottom, the ground without the box's footprint.
    open_box = trimesh.Trimesh(box.vertices, box.faces[box.face_normals[:, 2] > -0.5], process=False)
    strips = [((-1, -1), (1, -0.3)), ((-1, 0.3), (1, 1)), ((-1, -0.3), (-0.3, 0.3)), ((0.3, -0.3), (1, 0.3))]
    pieces = []
    for (x0, y0), (x1, y1) in strips:
        v = np.array([[x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0]], dtype=float)
        pieces.append(trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False))
    reconstruction = trimesh.util.concatenate([open_box, *pieces])
    blind = evaluate_against_ground_truth(reconstruction, [ground, box], 2.0, region, n_samples=20_000)
    fair = evaluate_against_ground_truth(reconstruction, [ground, box], 2.0, region, n_samples=20_000, gt_views=[view])
    assert 0.5 < fair["gt_visible_fraction"] < 1.0
    # Hidden ground-truth surface (ground under the box, its bottom) inflates the blind figure.
    assert fair["chamfer_gt_to_mesh"] < 0.5 * blind["chamfer_gt_to_mesh"]

    # load_ground_truth picks the views up from the demo layout (cameras.views + depth/{stem}.npy).
    (tmp_path / "meshes").mkdir()
    ground.export(tmp_path / "meshes" / "ground.ply")
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "view_000.npy", depth)
    (tmp_path / "scene_gt.json").write_text(
        json.dumps(
            {
                "region_of_interest": region,
                "cameras": {
                    "K": K.tolist(),
                    "views": [
                        {"image": "images/view_000.png", "c2w": c2w.tolist()},
                        {"image": "images/view_001.png", "c2w": c2w.tolist()},
                    ],
                },
            }
        )
    )
    gt = load_ground_truth(tmp_path)
    assert len(gt.views) == 1 and np.array_equal(gt.views[0].depth, depth)
