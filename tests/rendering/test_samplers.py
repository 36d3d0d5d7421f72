"""Scene spaces (NDC in the OpenCV convention, contraction) and proposal sampling helpers."""

from __future__ import annotations

import torch

from san.cameras import RayBundle
from san.rendering.samplers import (
    SceneSpace,
    contract,
    distortion_loss,
    interlevel_loss,
    outer_weights,
    piecewise_distances,
    sample_pdf,
    uniform_edges,
    world_to_ndc,
)


def _rays(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    origins = (torch.rand(n, 3, generator=g) - 0.5) * 0.4
    d = torch.randn(n, 3, generator=g) * 0.25 + torch.tensor([0.0, 0.0, 1.0])
    return RayBundle(origins, d / d.norm(dim=-1, keepdim=True))


def test_ndc_points_are_linear_in_s_and_start_on_near_plane():
    space = SceneSpace("forward_facing", near=1.3, far=6.0, ndc_near=1.0, ndc_ax=1.6, ndc_ay=2.1)
    rays = _rays()
    s = torch.linspace(0, 0.95, 20).expand(len(rays), -1)
    t, r = space.distances(rays, s)
    p = rays.origins[:, None] + t[..., None] * rays.directions[:, None]
    torch.testing.assert_close(p[:, 0, 2], torch.ones(len(rays)), atol=1e-5, rtol=0)  # s = 0 on z = near
    ndc = world_to_ndc(p, 1.0, 1.6, 2.1)
    # a straight line in NDC, traversed at constant speed |d'| = dr/ds
    velocity = (ndc[:, 1] - ndc[:, 0]) / (s[:, 1:2] - s[:, :1])  # N x 3
    expect = ndc[:, :1] + velocity[:, None, :] * s[..., None]
    torch.testing.assert_close(ndc, expect, atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(ndc[..., 2], 2 * s - 1, atol=1e-4, rtol=0)
    speed = (ndc[:, 1] - ndc[:, 0]).norm(dim=-1) / (s[:, 1] - s[:, 0])
    torch.testing.assert_close(r[:, 1] - r[:, 0], speed * (s[:, 1] - s[:, 0]), atol=1e-4, rtol=1e-3)


def test_ndc_normalize_and_bounding_box():
    space = SceneSpace("forward_facing", near=1.3, far=6.0, ndc_near=1.0, ndc_ax=1.6, ndc_ay=2.1, ndc_margin=0.1)
    box = torch.tensor(space.bounding_box(), dtype=torch.float32)
    corners = torch.stack([box[1] * torch.tensor([sx, sy, 1.0]) for sx in (-1, 1) for sy in (-1, 1)])
    x = space.normalize_positions(corners)
    assert torch.allclose(x[:, :2].min(), torch.tensor(0.0), atol=1e-6) and torch.allclose(
        x[:, :2].max(), torch.tensor(1.0), atol=1e-6
    )
    assert bool(space.inside(torch.tensor([[0.0, 0.0, 2.0]]))) and not bool(
        space.inside(torch.tensor([[0.0, 0.0, 0.5]]))
    )


def test_contraction():
    p = torch.tensor([[0.5, -0.2, 0.9], [2.0, 0.0, 0.0], [0.0, -1e6, 1.0]])
    c = contract(p)
    torch.testing.assert_close(c[0], p[0])
    torch.testing.assert_close(c[1], torch.tensor([1.5, 0.0, 0.0]))
    assert abs(float(c[2, 1]) + 2.0) < 1e-5
    space = SceneSpace("unbounded", near=0.05, far=1000.0)
    x = space.normalize_positions(p)
    assert bool(((x >= 0) & (x <= 1)).all())


def test_piecewise_distances_span_near_to_far_monotonically():
    s = torch.linspace(0, 1, 101)[None]
    t, r = piecewise_distances(s, 0.05, 1000.0)
    assert abs(float(t[0, 0]) - 0.05) < 1e-6 and abs(float(t[0, -1]) - 1000.0) / 1000.0 < 1e-4
    assert bool((t[:, 1:] > t[:, :-1]).all()) and torch.equal(t, r)


def test_uniform_edges_stratified_sorted_in_unit_interval():
    torch.manual_seed(0)
    e = uniform_edges(5, 8, True)
    assert e.shape == (5, 9) and bool((e[:, 1:] >= e[:, :-1]).all())
    assert bool((e[:, 0] == 0).all()) and bool((e[:, -1] == 1).all())


def test_sample_pdf_concentrates_where_weight_is():
    edges = torch.linspace(0, 1, 11).expand(3, -1).contiguous()
    w = torch.zeros(3, 10)
    w[:, 6] = 1.0
    new = sample_pdf(edges, w, 33, stratified=False, padding=0.0)
    assert new.shape == (3, 33) and bool((new[:, 1:] >= new[:, :-1]).all())
    assert bool(((new >= 0.6 - 1e-6) & (new <= 0.7 + 1e-6)).all())


def test_outer_weights_against_brute_force():
    torch.manual_seed(0)
    coarse = torch.sort(torch.rand(4, 9), dim=-1).values
    coarse[:, 0], coarse[:, -1] = 0.0, 1.0
    fine = torch.sort(torch.rand(4, 13), dim=-1).values
    cw = torch.rand(4, 8)
    got = outer_weights(fine, coarse, cw)
    want = torch.zeros(4, 12)
    for n in range(4):
        for i in range(12):
            a, b = fine[n, i], fine[n, i + 1]
            for j in range(8):
                if coarse[n, j + 1] > a and coarse[n, j] < b:
                    want[n, i] += cw[n, j]
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_interlevel_loss_zero_when_proposal_bounds_fine():
    edges = torch.linspace(0, 1, 9).expand(2, -1).contiguous()
    w = torch.rand(2, 8) / 8
    assert float(interlevel_loss(edges, w, [edges], [w])) < 1e-9
    assert float(interlevel_loss(edges, w, [edges], [torch.zeros_like(w)])) > 0


def test_distortion_loss_matches_quadratic_form():
    torch.manual_seed(0)
    edges = torch.sort(torch.rand(3, 7), dim=-1).values
    w = torch.rand(3, 6)
    m = 0.5 * (edges[:, 1:] + edges[:, :-1])
    brute = (w[:, :, None] * w[:, None, :] * (m[:, :, None] - m[:, None, :]).abs()).sum((1, 2))
    brute = brute + (w**2 * (edges[:, 1:] - edges[:, :-1])).sum(-1) / 3
    torch.testing.assert_close(distortion_loss(edges, w), brute.mean(), atol=1e-6, rtol=1e-5)
