"""Volume-rendering weights, accumulation and depth against hand-computed values."""

from __future__ import annotations

import math

import torch

from san.rendering.volume import accumulate, accumulation, compute_weights, expected_depth


def test_weights_match_hand_computed_example():
    sigmas = torch.tensor([[0.0, 1.0, 2.0, 1000.0]])
    deltas = torch.tensor([[1.0, 0.5, 0.25, 1.0]])
    # alpha = 1 - exp(-sigma delta); T_i = prod_{j<i} (1 - alpha_j)
    a = [0.0, 1 - math.exp(-0.5), 1 - math.exp(-0.5), 1.0]
    T = [1.0, 1.0, math.exp(-0.5), math.exp(-1.0)]
    want = torch.tensor([[t * al for t, al in zip(T, a)]])
    got = compute_weights(sigmas, deltas)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(accumulation(got), torch.tensor([1.0]), atol=1e-6, rtol=0)


def test_weights_equal_cumprod_definition():
    torch.manual_seed(0)
    sigmas = torch.rand(7, 11) * 5
    deltas = torch.rand(7, 11) * 0.3
    alpha = 1 - torch.exp(-sigmas * deltas)
    T = torch.cumprod(torch.cat([torch.ones(7, 1), 1 - alpha[:, :-1]], dim=1), dim=1)
    torch.testing.assert_close(compute_weights(sigmas, deltas), T * alpha, atol=1e-6, rtol=1e-5)


def test_accumulate_and_depth():
    w = torch.tensor([[0.25, 0.5, 0.0], [0.0, 0.0, 0.0]])
    v = torch.arange(18, dtype=torch.float32).view(2, 3, 3)
    torch.testing.assert_close(
        accumulate(w, v), torch.tensor([[0.25 * 0 + 0.5 * 3, 0.25 * 1 + 0.5 * 4, 0.25 * 2 + 0.5 * 5], [0.0, 0.0, 0.0]])
    )
    t = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    depth = expected_depth(w, t)
    assert abs(float(depth[0]) - (0.25 * 1 + 0.5 * 2) / 0.75) < 1e-6
    assert float(depth[1]) == 0.0  # empty ray: no division by zero
