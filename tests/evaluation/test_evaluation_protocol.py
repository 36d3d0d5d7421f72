"""The evaluation protocol: click grid, IoU rules, feature agreement, the evaluation core with
stand-in renderers, the shift ceiling and the timing helper."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from san.cameras import Camera
from san.data.scene import Frame, Normalization, Scene
from san.evaluation.protocol import (
    CLICK_COLUMNS,
    ceiling_shift_px,
    click_grid,
    click_rows,
    evaluate_views,
    evaluation_views,
    feature_agreement,
    mask_iou,
    shift_ceiling_ious,
    summarize,
    teacher_shift_ceiling,
)
from san.evaluation.timing import pipeline_fps, time_fn
from san.teachers import build_teacher
from san.teachers.base import Decoded

# ------------------------------------------------------------------------------ grid and IoU


def test_click_grid_hand_computed():
    clicks = click_grid(100, 50, 5)
    assert clicks.shape == (25, 2)
    # Click k = j * 5 + i at ((i + 0.5) / 5 * W, (j + 0.5) / 5 * H).
    np.testing.assert_allclose(clicks[0], [10.0, 5.0])
    np.testing.assert_allclose(clicks[1], [30.0, 5.0])
    np.testing.assert_allclose(clicks[4], [90.0, 5.0])
    np.testing.assert_allclose(clicks[5], [10.0, 15.0])
    np.testing.assert_allclose(clicks[12], [50.0, 25.0])
    np.testing.assert_allclose(clicks[24], [90.0, 45.0])
    np.testing.assert_allclose(click_grid(512, 384, 5)[0], [51.2, 38.4])
    np.testing.assert_allclose(click_grid(7, 3, 1), [[3.5, 1.5]])


def test_mask_iou_rules():
    empty = np.zeros((4, 4), bool)
    a = empty.copy()
    a[0, :3] = True  # 3 pixels
    b = empty.copy()
    b[0, 1:4] = True  # 3 pixels, 2 shared
    assert mask_iou(empty, empty) == 1.0  # two empty masks agree
    assert mask_iou(a, empty) == 0.0 and mask_iou(empty, b) == 0.0  # one empty
    assert mask_iou(a, b) == pytest.approx(2 / 4)
    assert mask_iou(a, a) == 1.0
    assert mask_iou(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shapes differ"):
        mask_iou(a, np.zeros((3, 4), bool))


def test_feature_agreement_valid_region_only():
    teacher = torch.zeros(1, 2, 4, 4)
    imitated = torch.zeros(2, 4, 4)
    teacher[0, 0, :2, :3] = 1.0
    imitated[0, :2, :3] = 1.0
    imitated[:, 2:, :] = 5.0  # outside the valid 2x3 region: ignored
    mse, cos = feature_agreement([imitated], [teacher], [(2, 3)])
    assert mse == 0.0 and cos == pytest.approx(1.0)
    imitated[1, :2, :3] = 1.0  # now each valid cell is (1, 1) vs (1, 0)
    mse, cos = feature_agreement([imitated], [teacher], [(2, 3)])
    assert mse == pytest.approx(0.5)  # half the channel values differ by 1
    assert cos == pytest.approx(1 / np.sqrt(2))
    # A valid-region-only imitated map is accepted too.
    mse2, _ = feature_agreement([imitated[:, :2, :3]], [teacher], [(2, 3)])
    assert mse2 == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same channels"):
        feature_agreement([torch.zeros(3, 4, 4)], [teacher], [(2, 3)])


def test_evaluation_views_at_the_protocol_size():
    K = np.array([[800.0, 0, 504], [0, 800, 378], [0, 0, 1]])
    frames = tuple(
        Frame(f"/x/img_{i:03d}.png", Camera(np.eye(4), K, 1008, 756), split="test" if i % 8 == 0 else "train")
        for i in range(17)
    )
    scene = Scene(frames, "forward_facing", 0.1, 1.0, Normalization.identity())
    views = evaluation_views(scene, 512)
    assert [v.index for v in views] == [0, 8, 16] and views[1].name == "img_008"
    assert (views[0].width, views[0].height) == (512, 384)
    np.testing.assert_allclose(views[0].K[0], [800 * 512 / 1008, 0, 504 * 512 / 1008])
    np.testing.assert_allclose(views[0].K[1], [0, 800 * 384 / 756, 378 * 384 / 756])
    assert len(evaluation_views(scene, 64, max_views=2)) == 2


# --------------------------------------------------------------------- the evaluation core


@pytest.fixture(scope="module")
def toy_teacher():
    return build_teacher("toy_multiscale_untrained", device="cpu")


class _View:
    def __init__(self, index, seed):
        self.index, self.name, self.seed = index, f"v{index}", seed


def _image(seed: int, h: int = 48, w: int = 64) -> torch.Tensor:
    """A few coloured rectangles on a gradient: ``HxWx3`` in ``[0, 1]``."""
    g = torch.Generator().manual_seed(seed)
    img = torch.linspace(0, 0.3, w).expand(h, w)[..., None].repeat(1, 1, 3).clone()
    for _ in range(4):
        y0, x0 = int(torch.randint(0, h - 12, (1,), generator=g)), int(torch.randint(0, w - 16, (1,), generator=g))
        img[y0 : y0 + 12, x0 : x0 + 16] = torch.rand(3, generator=g)
    return img


def test_evaluate_views_identical_features_give_iou_one(toy_teacher, tmp_path):
    views = [_View(0, 1), _View(8, 2)]

    def rgb(view):
        return _image(view.seed)

    def features(view):
        return [f[0] for f in toy_teacher.encode(_image(view.seed).permute(2, 0, 1)[None])]

    results = evaluate_views(toy_teacher, rgb, features, views, grid=4, ceiling_shift=ceiling_shift_px, keep=1)
    assert [r.view for r in results] == [0, 8]
    for r in results:
        np.testing.assert_array_equal(r.ious, 1.0)
        assert r.feature_mse == 0.0 and r.feature_cosine == pytest.approx(1.0)
        assert r.ceiling_ious is not None and r.ceiling_ious.shape == (16,)
        assert np.all((r.ceiling_ious >= 0) & (r.ceiling_ious <= 1))
    assert results[0].image is not None and results[0].teacher_masks.shape == (16, 48, 64)
    assert results[1].image is None  # only the first `keep` views keep pixels
    summary = summarize(results)
    assert summary["mask_iou"] == 1.0 and summary["n_views"] == 2 and summary["n_clicks"] == 32
    assert 0.0 <= summary["iou_ceiling"] <= 1.0
    rows = click_rows(results)
    assert len(rows) == 32 and tuple(rows[0]) == CLICK_COLUMNS
    assert rows[17]["view"] == 8 and rows[17]["click"] == 1
    assert rows[1]["x"] == pytest.approx(1.5 / 4 * 64)


def test_evaluate_views_different_features_score_below_one(toy_teacher):
    views = [_View(0, 3)]

    def features(view):
        # Another image's features, only the valid region (the teacher pads the rest).
        maps = toy_teacher.encode(_image(99).permute(2, 0, 1)[None])
        return [f[0, :, :vh, :vw] for f, (vh, vw) in zip(maps, toy_teacher.valid_hw((48, 64)))]

    (r,) = evaluate_views(toy_teacher, lambda v: _image(v.seed), features, views, grid=3, keep=0)
    assert r.ious.shape == (9,) and r.mask_iou < 1.0
    assert r.feature_mse > 0.0 and r.feature_cosine < 1.0
    assert r.ceiling_ious is None and r.image is None


class _DiskTeacher:
    """Stand-in teacher whose mask is a disk of radius 5 px around the click, whatever the features:
    a perfectly shift-equivariant teacher, so its shift ceiling is exactly 1."""

    def encode(self, images):
        return [images.mean(1, keepdim=True)]

    def valid_hw(self, image_hw):
        return [tuple(image_hw)]

    def decode(self, features, prompts, image_size, multimask_output=False):
        h, w = image_size
        ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        x, y = prompts.points[0]
        mask = (xs - x) ** 2 + (ys - y) ** 2 <= 25
        return Decoded(mask[None], torch.ones(1), mask[None].float())


def test_shift_ceiling_of_an_equivariant_teacher_is_one():
    image = _image(5)
    clicks = click_grid(64, 48, 3)
    np.testing.assert_array_equal(shift_ceiling_ious(_DiskTeacher(), image, clicks, 2), 1.0)
    assert teacher_shift_ceiling(_DiskTeacher(), [image, _image(6)], clicks, shift_px=3) == 1.0
    with pytest.raises(ValueError, match="does not fit"):
        shift_ceiling_ious(_DiskTeacher(), image, clicks, 0)


def test_ceiling_shift_is_half_a_sam_patch():
    assert ceiling_shift_px((384, 512)) == 4  # 8 px at 1024 -> 4 px at 512
    assert ceiling_shift_px((96, 128)) == 1
    assert ceiling_shift_px((32, 32)) == 1  # at least one pixel
    assert ceiling_shift_px((1024, 768)) == 8


# ---------------------------------------------------------------------------------- timing


def test_time_fn_returns_median_of_timed_runs():
    calls = []
    delays = iter([0.0, 0.0, 0.002, 0.030, 0.010])  # two warm-up calls, then three timed ones

    def fn():
        calls.append(1)
        time.sleep(next(delays))

    t = time_fn(fn, warmup=2, repeats=3, device="cpu")
    assert len(calls) == 5 and len(t["all"]) == 3
    assert t["median_ms"] == pytest.approx(float(np.median(t["all"])))
    assert t["all"][1] >= 30.0 and t["all"][0] < t["all"][1]
    assert sorted(t["all"])[1] == t["median_ms"]
    with pytest.raises(ValueError):
        time_fn(fn, warmup=0, repeats=0)


def test_pipeline_fps_hand_computed():
    ms = {
        "rgb_render": 17.0,
        "teacher_encode": 624.0,
        "imitation_encode_volume": 12.0,
        "imitation_encode_mesh": 5.0,
        "decode": 8.0,
    }
    fps = pipeline_fps(ms)
    assert fps["original"] == pytest.approx(1000 / 649)
    assert fps["imitation"] == pytest.approx(1000 / 37)
    assert fps["imitation_mesh"] == pytest.approx(1000 / 30)
    assert fps["speedup"] == pytest.approx(649 / 37)
    assert pipeline_fps(ms, "imitation_encode_mesh")["imitation"] == pytest.approx(1000 / 30)


def test_click_latency_ratio_of_medians():
    from san.evaluation.timing import click_latency

    def slow_encode(image):
        time.sleep(0.02)
        return image

    out = click_latency(lambda: torch.zeros(1), slow_encode, lambda: torch.zeros(1), lambda f: f, warmup=0, repeats=3)
    assert out["teacher"]["median_ms"] >= 20.0
    assert out["ratio"] == pytest.approx(out["teacher"]["median_ms"] / out["imitation"]["median_ms"])
    assert out["ratio"] > 1.0
