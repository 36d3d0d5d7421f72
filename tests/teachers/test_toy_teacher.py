"""The TOY multi-scale teacher: two maps of different sizes, batching, decode geometry."""

from __future__ import annotations

import torch

from san.teachers import Prompts, build_teacher


def test_two_maps_and_valid_regions():
    toy = build_teacher("toy_multiscale_untrained", device="cpu")
    assert toy.info.untrained and toy.info.feature_shapes == ((32, 32, 32), (64, 16, 16))
    maps = toy.encode(torch.rand(2, 3, 60, 80))
    assert [tuple(m.shape) for m in maps] == [(2, 32, 32, 32), (2, 64, 16, 16)]
    assert toy.valid_hw((60, 80)) == [(24, 32), (12, 16)]


def test_encode_splits_batches_consistently():
    images = torch.rand(5, 3, 40, 40)
    one = build_teacher("toy_multiscale_untrained", device="cpu", batch_size=1).encode(images)
    all_ = build_teacher("toy_multiscale_untrained", device="cpu", batch_size=8).encode(images)
    for a, b in zip(one, all_):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_decode_mask_contains_click():
    toy = build_teacher("toy_multiscale_untrained", device="cpu")
    image = torch.rand(3, 60, 80)
    maps = toy.encode(image[None])
    masks, scores, logits = toy.decode([m[0] for m in maps], Prompts.click(40.5, 30.5), (60, 80))
    assert masks.shape == (1, 60, 80) and bool(masks[0, 30, 40])
    assert scores.shape == (1,) and logits.shape == (1, 32, 32)
    boxed = toy.decode([m[0] for m in maps], Prompts.from_box(20, 10, 60, 50), (60, 80))
    ys, xs = torch.nonzero(boxed.masks[0], as_tuple=True)
    assert ys.numel() > 0 and ys.min() >= 5 and ys.max() <= 55 and xs.min() >= 15 and xs.max() <= 65


def test_segment_convenience():
    toy = build_teacher("toy_multiscale_untrained", device="cpu")
    out = toy.segment(torch.rand(3, 50, 70), Prompts.click(10.5, 20.5))
    assert out.masks.shape == (1, 50, 70) and bool(out.masks[0, 20, 10])
