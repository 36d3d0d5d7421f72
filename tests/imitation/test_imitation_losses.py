"""Losses of feature imitation (Eq. 8-11) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from san.imitation.losses import (
    channel_projection,
    correlation_loss,
    feature_mse,
    imitation_loss,
    mean_cosine,
    similarity_map,
)


def test_similarity_map_is_pairwise_cosine():
    fi = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # 2 pixels, C = 2
    fj = torch.tensor([[3.0, 3.0]])  # 1 pixel
    s = similarity_map(fi, fj)
    assert s.shape == (2, 1)
    torch.testing.assert_close(s, torch.full((2, 1), 1 / math.sqrt(2)))


def test_correlation_loss_hand_computed():
    # Teacher: S = [[1/sqrt2], [1/sqrt2]]; prediction: S_hat = [[1], [1]].
    targets = [torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 1.0]])]
    preds = [torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[2.0, 0.0]])]
    expected = (1 - 1 / math.sqrt(2)) ** 2
    assert float(correlation_loss(preds, targets)) == pytest.approx(expected, rel=1e-6)
    # Three maps: pairs (0,1), (0,2), (1,2); identical third maps add (0,2) and (1,2) terms.
    t3 = targets + [torch.tensor([[0.0, 1.0]])]
    p3 = preds + [torch.tensor([[0.0, 1.0]])]
    # S_02 teacher [[0],[1]] vs pred [[0],[0]] -> 0.5; S_12 teacher [[1/sqrt2]] vs pred [[0]] -> 0.5.
    assert float(correlation_loss(p3, t3)) == pytest.approx(expected + 0.5 + 0.5, rel=1e-6)


def test_correlation_loss_zero_when_equal_and_for_one_map():
    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(10, 8, generator=g), torch.randn(4, 8, generator=g)]
    assert float(correlation_loss(maps, maps)) == pytest.approx(0.0, abs=1e-12)
    assert float(correlation_loss(maps[:1], [torch.zeros(10, 8)])) == 0.0


def test_unequal_channels_use_fixed_orthonormal_projection():
    q = channel_projection(64, 32)
    torch.testing.assert_close(q.T @ q, torch.eye(32), atol=1e-5, rtol=0)
    assert torch.equal(q, channel_projection(64, 32))  # deterministic
    g = torch.Generator().manual_seed(1)
    fi, fj = torch.randn(6, 32, generator=g), torch.randn(3, 64, generator=g)
    s = similarity_map(fi, fj)
    assert s.shape == (6, 3)
    ref = torch.nn.functional.normalize(fi, dim=1) @ torch.nn.functional.normalize(fj @ q, dim=1).T
    torch.testing.assert_close(s, ref)
    assert float(correlation_loss([fi, fj], [fi, fj])) == pytest.approx(0.0, abs=1e-12)


def test_imitation_loss_sums_maps_and_adds_weighted_correlation():
    g = torch.Generator().manual_seed(2)
    preds = [torch.randn(5, 4, generator=g, requires_grad=True), torch.randn(3, 4, generator=g, requires_grad=True)]
    targets = [torch.randn(5, 4, generator=g), torch.randn(3, 4, generator=g)]
    with torch.no_grad():
        mse = float(feature_mse(preds[0], targets[0]) + feature_mse(preds[1], targets[1]))
        corr = float(correlation_loss(preds, targets))
    loss, m = imitation_loss(preds, targets, correlation_weight=0.5)
    assert float(loss.detach()) == pytest.approx(mse + 0.5 * corr, rel=1e-6)
    assert m["mse"] == pytest.approx(mse) and m["corr"] == pytest.approx(corr)
    loss.backward()
    assert preds[1].grad is not None and preds[1].grad.abs().sum() > 0
    loss0, m0 = imitation_loss(preds, targets, correlation_weight=0.0)
    assert float(loss0.detach()) == pytest.approx(mse, rel=1e-6) and m0["corr"] == 0.0
    # Eq. 8 (per element, i.e. divided by C) and the cosine metric.
    assert float(feature_mse(torch.ones(2, 4), torch.zeros(2, 4))) == pytest.approx(1.0)
    assert float(
        mean_cosine(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[2.0, 0.0], [-1.0, -1.0]]))
    ) == pytest.approx(0.0, abs=1e-6)


def test_cross_scale_error_measures_the_correlation_structure():
    """The figure the correlation loss and the no_corr ablation move: 0 for the teacher's own
    features, unchanged by a per-map positive scale (cosine), larger for unrelated features."""
    from san.imitation.quality import cross_scale_error

    g = torch.Generator().manual_seed(0)
    t = [torch.randn(300, 8, generator=g), torch.randn(200, 16, generator=g), torch.randn(50, 4, generator=g)]
    assert cross_scale_error(t, t) == 0.0
    assert abs(cross_scale_error([2.0 * x for x in t], t)) < 1e-10
    other = [torch.randn(x.shape, generator=g) for x in t]
    assert cross_scale_error(other, t) > 0.01
