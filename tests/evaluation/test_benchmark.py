"""The ground-truth benchmark's metrics and protocol on small synthetic inputs with hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from san.benchmark import (
    BenchmarkView,
    CameraMemo,
    confusion,
    run_task,
    summarize_confusions,
    summarize_scene,
    summarize_task,
    surface_iou,
)
from san.cameras import Camera
from san.data.gt_layout import BenchmarkTask
from san.evaluation.masks import resize_mask


def square(h, w, rows, cols):
    m = np.zeros((h, w), dtype=bool)
    m[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = True
    return m


def test_metrics_two_views_hand_computed():
    # view A (4x4): GT = 2x2 block, prediction overlaps half of it and adds 2 pixels
    gt_a = square(4, 4, (1, 2), (1, 2))
    pred_a = np.zeros((4, 4), dtype=bool)
    pred_a[1, 1:4] = True
    pred_a[0, 0] = True
    # view B (2x2): one pixel, found exactly
    gt_b = np.array([[True, False], [False, False]])
    pred_b = gt_b.copy()
    ca, cb = confusion(pred_a, gt_a), confusion(pred_b, gt_b)
    assert (ca.tp, ca.fp, ca.fn, ca.tn) == (2, 2, 2, 10)
    assert ca.iou == pytest.approx(2 / 6) and ca.accuracy == pytest.approx(12 / 16)
    assert cb.iou == 1.0 and cb.accuracy == 1.0
    s = summarize_confusions([ca, cb])
    assert s["iou_per_image_mean"] == pytest.approx((1 / 3 + 1) / 2)
    assert s["iou_pooled"] == pytest.approx(3 / 7)  # (2 + 1) / (6 + 1)
    assert s["accuracy_per_image_mean"] == pytest.approx((0.75 + 1.0) / 2)
    assert s["accuracy_pooled"] == pytest.approx(16 / 20)
    assert s["n_views"] == 2


def test_metrics_empty_and_errors():
    empty = np.zeros((3, 3), dtype=bool)
    assert confusion(empty, empty).iou == 1.0
    assert confusion(square(3, 3, (0, 0), (0, 0)), empty).iou == 0.0
    with pytest.raises(ValueError, match="differ in size"):
        confusion(np.zeros((2, 2)), np.zeros((3, 3)))
    assert summarize_confusions([])["iou_pooled"] is None


def test_resize_mask_nearest():
    m = square(2, 2, (0, 0), (0, 1))  # top row
    big = resize_mask(m, (4, 4))
    assert big.shape == (4, 4) and big[:2].all() and not big[2:].any()
    assert (resize_mask(big, (2, 2)) == m).all()


# ------------------------------------------------------------------ a plane scene, three views

F, C, N = 8.0, 4.0, 8  # focal, principal point, image size
PLANE_Z = 2.0


def camera(x):
    c2w = np.eye(4)
    c2w[0, 3] = x
    return c2w


K = np.array([[F, 0, C], [0, F, C], [0, 0, 1.0]])


def render_fn(cam: Camera):
    """The plane z = 2 seen by a camera looking along +z: depth = distance along each ray."""
    c2w, K_, w, h = cam.c2w, cam.K, cam.width, cam.height
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    d = np.stack([(xs - K_[0, 2]) / K_[0, 0], (ys - K_[1, 2]) / K_[1, 1], np.ones_like(xs)], -1) @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    t = (PLANE_Z - c2w[2, 3]) / d[..., 2]
    return {"rgb": torch.zeros(h, w, 3), "depth": torch.as_tensor(t)}


def features_fn(cam: Camera):
    return [torch.zeros(1, 1, 1, 1)]


def decode_fn(features, prompts, hw):
    """A 3x3 square around the pixel of the first positive point."""
    p = prompts.points[prompts.labels == 1][0]
    x, y = int(np.floor(float(p[0]))), int(np.floor(float(p[1])))
    return square(hw[0], hw[1], (y - 1, y + 1), (x - 1, x + 1))[None], torch.ones(1)


def test_protocol_plane_scene_hand_computed():
    views = {
        "ref": BenchmarkView("ref", 0, "train", Camera(camera(0.0), K, N, N)),
        "shifted": BenchmarkView("shifted", 1, "test", Camera(camera(0.5), K, N, N)),
        "same": BenchmarkView("same", 2, "test", Camera(camera(0.0), K, N, N)),
    }
    # click at pixel (4, 4) -> world (0.125, 0.125, 2) -> pixel (2.5, 4.5) in the camera 0.5 to the right
    gts = {
        "ref": square(N, N, (3, 5), (3, 5)),  # exactly the predicted square: IoU 1
        "shifted": square(N, N, (3, 5), (2, 4)),  # prediction cols 1..3: tp 6, fp 3, fn 3
        "same": square(N, N, (4, 5), (4, 5)),  # prediction 3x3 over a 2x2: tp 4, fp 5
    }
    task = BenchmarkTask("obj", "ref", (N, N), np.array([[4.5, 4.5]]), np.array([1]), None, ("shifted", "same"))
    scores = run_task(task, views, gts.get, render_fn, features_fn, decode_fn)
    assert [s.view for s in scores] == ["ref", "shifted", "same"]
    assert scores[0].role == "reference" and scores[0].confusion.iou == 1.0
    assert scores[1].prompt_pixels[0, :2] == pytest.approx([2.5, 4.5])
    assert scores[1].confusion.iou == pytest.approx(6 / 12) and scores[1].confusion.accuracy == pytest.approx(58 / 64)
    assert scores[2].confusion.iou == pytest.approx(4 / 9) and scores[2].confusion.accuracy == pytest.approx(59 / 64)
    t = summarize_task(scores)
    assert t["iou_per_image_mean"] == pytest.approx((0.5 + 4 / 9) / 2)
    assert t["iou_pooled"] == pytest.approx(10 / 21)
    assert t["accuracy_per_image_mean"] == pytest.approx(117 / 128)
    assert t["reference_iou"] == 1.0
    assert t["held_out_targets"] == 2 and t["held_out_fraction"] == 1.0 and t["targets_without_prompt"] == 0
    scene = summarize_scene({"obj": t}, scores)
    assert scene["miou"] == pytest.approx(t["iou_per_image_mean"]) and scene["iou_pooled"] == pytest.approx(10 / 21)


def test_camera_memo_calls_once_per_camera_key():
    """``CameraMemo`` hands ``fn`` the Camera, keyed by ``Camera.key()``: an equal camera (another
    object, or a view holding one) is a hit, another pose or size a miss; a prefill is a hit."""
    seen = []
    memo = CameraMemo(lambda cam: seen.append(cam) or cam.width)
    a = Camera(camera(0.0), K, N, N)
    assert memo(a) == N and seen == [a] and memo.misses == 1
    assert memo(Camera(camera(0.0), K.copy(), N, N)) == N and memo.misses == 1
    assert memo(BenchmarkView("ref", 0, "train", a)) == N and memo.misses == 1
    memo(Camera(camera(0.5), K, N, N))
    memo(Camera(camera(0.0), K, N, N + 1))
    assert memo.misses == 3 and all(isinstance(c, Camera) for c in seen)
    memo.prefill(Camera(camera(1.0), K, N, N), "stored")
    assert memo(Camera(camera(1.0), K, N, N)) == "stored" and memo.misses == 3


def test_protocol_scores_at_annotation_resolution_with_max_size():
    views = {
        "ref": BenchmarkView("ref", 0, "train", Camera(camera(0.0), K, N, N)),
        "same": BenchmarkView("same", 1, "test", Camera(camera(0.0), K, N, N)),
    }
    # annotations at 16x16 (twice the image), rendering capped at 8 px: prediction upsampled x2
    gt = square(16, 16, (6, 11), (6, 11))
    task = BenchmarkTask("obj", "ref", (16, 16), np.array([[9.0, 9.0]]), np.array([1]), None, ("same",))
    scores = run_task(task, views, {"same": gt}.get, render_fn, features_fn, decode_fn, max_size=8)
    assert scores[1].mask.shape == (16, 16) and scores[1].render_mask.shape == (8, 8)
    assert scores[1].confusion.iou == 1.0  # the 3x3 square at (4, 4) of 8 px is rows/cols 6..11 at 16 px
    assert scores[0].confusion is None  # no reference mask: not scored


def test_protocol_occluded_target_gets_an_empty_mask():
    views = {
        "ref": BenchmarkView("ref", 0, "train", Camera(camera(0.0), K, N, N)),
        "far": BenchmarkView("far", 1, "test", Camera(camera(50.0), K, N, N)),
    }
    gt = square(N, N, (0, 1), (0, 1))
    task = BenchmarkTask("obj", "ref", (N, N), np.array([[4.5, 4.5]]), np.array([1]), None, ("far",))
    scores = run_task(task, views, {"far": gt}.get, render_fn, features_fn, decode_fn)
    assert scores[1].prompts_used == 0 and scores[1].pred_area == 0 and scores[1].confusion.iou == 0.0
    assert summarize_task(scores)["targets_without_prompt"] == 1


def test_protocol_rejects_wrong_aspect_ratio():
    views = {
        "ref": BenchmarkView("ref", 0, "train", Camera(camera(0.0), K, N, N)),
        "t": BenchmarkView("t", 1, "test", Camera(camera(0.0), K, N, N)),
    }
    task = BenchmarkTask("obj", "ref", (N, N), np.array([[4.5, 4.5]]), np.array([1]), None, ("t",))
    with pytest.raises(ValueError, match="aspect ratio"):
        run_task(task, views, {"t": np.zeros((4, 8), dtype=bool)}.get, render_fn, features_fn, decode_fn)


def test_surface_iou_half_selection():
    trimesh = pytest.importorskip("trimesh")
    target = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    assert surface_iou(target, target, distance=0.02, samples=4000)["surface_iou"] == pytest.approx(1.0, abs=0.01)
    top = target.submesh([np.flatnonzero(target.face_normals[:, 2] > 0.5)], append=True)  # 1 of 6 faces
    r = surface_iou(top, target, distance=0.02, samples=4000)
    assert r["precision"] == pytest.approx(1.0, abs=0.01)
    assert r["surface_iou"] == pytest.approx(1 / 6, abs=0.03)
    assert surface_iou(None, target)["surface_iou"] == 0.0


def world_x_features(cam: Camera):
    """Stand-in features: the world x of the plane point each pixel sees."""
    xs = (np.arange(cam.width) + 0.5 - cam.K[0, 2]) / cam.K[0, 0] * (PLANE_Z - cam.c2w[2, 3]) + cam.c2w[0, 3]
    return [torch.as_tensor(np.tile(xs, (cam.height, 1)))]


def strip_decode(features, prompts, hw):
    """The 'object' is the strip 0 <= x < 3 of the plane: found when most positive points are on it."""
    wx = features[0]
    p = prompts.points[prompts.labels == 1].floor().long()
    on = (wx[p[:, 1], p[:, 0]] >= 0) & (wx[p[:, 1], p[:, 0]] < 3)
    mask = (wx >= 0) & (wx < 3) if on.float().mean() > 0.5 else torch.zeros(hw, dtype=torch.bool)
    return mask[None], torch.ones(1)


def test_chain_reaches_a_view_the_click_does_not():
    # the click (world x = 0.125) is off-screen from the camera at x = 2 (it sees x in [1, 3));
    # the camera at x = 1 sees it, and its mask adds points up to x = 1.875
    views = {
        n: BenchmarkView(n, i, s, Camera(camera(x), K, N, N))
        for i, (n, x, s) in enumerate((("ref", 0.0, "train"), ("mid", 1.0, "train"), ("far", 2.0, "test")))
    }
    gt = np.ones((N, N), dtype=bool)
    task = BenchmarkTask("strip", "ref", (N, N), np.array([[4.5, 4.5]]), np.array([1]), None, ("far",))
    click = run_task(task, views, {"far": gt}.get, render_fn, world_x_features, strip_decode, propagation="click")
    assert click[1].prompts_used == 0 and click[1].confusion.iou == 0.0
    chain = run_task(
        task,
        views,
        {"far": gt}.get,
        render_fn,
        world_x_features,
        strip_decode,
        propagation="chain",
        chain_points=4,
        chain_max_area=1.0,
    )
    assert [s.view for s in chain] == ["ref", "far"]  # the stepping stone is not scored
    assert chain[1].prompts_used > 0 and chain[1].confusion.iou == 1.0
    # the masks here cover whole images: with chain_max_area 0.5 they add no points, the chain stops
    guarded = run_task(
        task, views, {"far": gt}.get, render_fn, world_x_features, strip_decode, propagation="chain", chain_points=4
    )
    assert guarded[1].prompts_used == 0
    with pytest.raises(ValueError, match="propagation"):
        run_task(task, views, {"far": gt}.get, render_fn, world_x_features, strip_decode, propagation="video")


def test_chain_order_walks_outwards():
    from san.benchmark import chain_order

    ring = {f"v{k}": BenchmarkView(f"v{k}", k, "train", Camera(_ring(k), K, N, N)) for k in range(8)}
    order = chain_order("v0", ring)
    assert order[0] == "v1" and sorted(order) == [f"v{k}" for k in range(1, 8)]  # v1 and v7 tie: by name
    visited = {0}
    for name in order:  # every next view is a ring neighbour of one already visited
        k = int(name[1:])
        assert (k - 1) % 8 in visited or (k + 1) % 8 in visited
        visited.add(k)


def _ring(k):
    c2w = np.eye(4)
    c2w[:3, 3] = [np.cos(2 * np.pi * k / 8), np.sin(2 * np.pi * k / 8), 0.0]
    return c2w


def test_limit_points_keeps_the_click_and_negatives():
    from san.benchmark import limit_points
    from san.teachers.base import Prompts

    seen = {}

    def decode(features, prompts, hw):
        seen["p"] = prompts
        return torch.zeros(1, *hw, dtype=torch.bool), torch.zeros(1)

    pts = torch.tensor([[5.0, 5.0], [0.5, 0.5], [9.5, 9.5], [5.5, 5.0], [2.0, 8.0]])
    limit_points(decode, 2)(None, Prompts(pts, torch.tensor([1, 1, 1, 1, 0])), (10, 10))
    p = seen["p"]
    assert p.labels.tolist() == [1, 1, 0] and p.points[0].tolist() == [5.0, 5.0] and p.points[2].tolist() == [2.0, 8.0]


def test_median_subset_leaves_out_outliers_that_farthest_takes_first():
    """A chain's points: the click, six on the object around (10, 10), two a spilled mask added far
    away. ``median`` keeps the click and the object's points; ``farthest`` takes the two outliers."""
    from san.benchmark import farthest_points, median_points

    pts = np.array(
        [[10.0, 10.0], [11, 10], [9, 10], [10, 11], [10, 9], [11, 11], [9, 9], [60, 60], [0, 70]], dtype=np.float64
    )
    assert median_points(pts, 4).tolist() == [0, 1, 2, 3]  # click, then nearest to the median (10, 10) by index
    assert set(farthest_points(pts, 3).tolist()) == {0, 7, 8}
    far_click = np.array([[50.0, 50.0], [10, 10], [11, 10], [9, 10]])
    assert median_points(far_click, 2).tolist() == [0, 1]  # the click stays even when it is the outlier
    assert median_points(pts[:3], 8).tolist() == [0, 1, 2]
    assert median_points(pts, 1).tolist() == [0]


def test_limit_points_uses_the_configured_subset_rule():
    from san.benchmark import POINT_SUBSET_RULES, limit_points, point_selector
    from san.evaluation.config import POINT_SUBSETS, BenchmarkConfig
    from san.teachers.base import Prompts

    assert set(POINT_SUBSET_RULES) == set(POINT_SUBSETS)
    with pytest.raises(ValueError, match="point_subset 'nope' is not one of"):
        point_selector("nope")
    with pytest.raises(Exception, match="point_subset"):
        BenchmarkConfig(point_subset="nope")
    seen = {}

    def decode(features, prompts, hw):
        seen["p"] = prompts.points.tolist()
        return torch.zeros(1, *hw, dtype=torch.bool), torch.zeros(1)

    pts = torch.tensor([[10.0, 10.0], [11, 10], [9, 10], [60, 60]])
    labels = torch.ones(4, dtype=torch.int64)
    limit_points(decode, 2, point_selector("median"))(None, Prompts(pts, labels), (80, 80))
    assert seen["p"] == [[10.0, 10.0], [11.0, 10.0]]
    limit_points(decode, 2, point_selector("farthest"))(None, Prompts(pts, labels), (80, 80))
    assert seen["p"] == [[10.0, 10.0], [60.0, 60.0]]


def test_mask_to_points_stays_inside():
    from san.data.gt_layout import mask_to_click, mask_to_points

    m = np.zeros((20, 30), dtype=bool)
    m[2:18, 3:27] = True
    pts = mask_to_points(m, 6)
    assert pts.shape == (6, 2) and tuple(pts[0]) == mask_to_click(m)
    xs, ys = pts[:, 0], pts[:, 1]
    assert (xs >= 3 + 2).all() and (xs <= 27 - 2).all() and (ys >= 2 + 2).all() and (ys <= 18 - 2).all()
    assert mask_to_points(np.zeros((3, 3), dtype=bool)).shape == (0, 2)
