"""The procedural scene family: determinism per seed, held-out seeds, demo exclusion, and the
torus / capsule intersections against their implicit surfaces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from san.data.procedural import (
    HELD_OUT_SEEDS,
    PATTERNS,
    SHAPES,
    demo_settings_excluded,
    render_scene_views,
    render_views,
    sample_scene,
    training_seeds,
)
from san.data.procedural.geometry import intersect_capsule, intersect_torus, normal_torus, torus_sdf
from san.data.procedural.render import trace_rays


def _scene_summary(scene):
    return [
        (o.name, o.pattern, [(p.shape, p.position.tolist(), p.rotation.tolist()) for p in o.parts])
        for o in scene.objects
    ]


def test_same_seed_same_scene_different_seed_different_scene():
    a, b, c = sample_scene(11), sample_scene(11), sample_scene(12)
    assert _scene_summary(a) == _scene_summary(b)
    assert np.array_equal(a.c2w, b.c2w) and np.array_equal(a.K, b.K)
    assert _scene_summary(a) != _scene_summary(c)


def test_same_seed_same_pixels():
    v1 = render_scene_views(5, 1, supersample=1)[0]
    v2 = render_scene_views(5, 1, supersample=1)[0]
    assert np.array_equal(v1.rgb, v2.rgb) and np.array_equal(v1.ids, v2.ids) and np.array_equal(v1.depth, v2.depth)
    assert np.isfinite(v1.depth).all() and (v1.depth > 0).all()
    assert {0, 1} <= set(np.unique(v1.ids).tolist()) or 1 in v1.ids  # ground always, sky usually


def test_scenes_cover_the_family():
    shapes, patterns, counts = set(), set(), []
    for seed in training_seeds(150):
        s = sample_scene(seed)
        counts.append(len(s.objects))
        for o in s.objects:
            patterns.add(o.pattern)
            shapes.update(p.shape for p in o.parts)
            for p in o.parts:  # objects rest on (never sink into) the ground
                assert p.lowest_z() >= -1e-9
            assert min(p.lowest_z() for p in o.parts) == pytest.approx(0.0, abs=1e-9)
    assert shapes == set(SHAPES) and patterns == set(PATTERNS)
    assert min(counts) >= 2 and max(counts) <= 8 and max(counts) >= 7
    assert any("+" in o.name for seed in training_seeds(20) for o in sample_scene(seed).objects)  # unions of two


def test_held_out_seeds_are_never_training_seeds():
    seeds = training_seeds(5000, start=HELD_OUT_SEEDS[0] - 2500)
    assert len(seeds) == 5000 and not set(seeds) & set(HELD_OUT_SEEDS)
    with pytest.raises(ValueError, match="held-out seed"):
        sample_scene(HELD_OUT_SEEDS[0])
    with pytest.raises(ValueError, match="not a held-out seed"):
        sample_scene(3, held_out=True)
    assert sample_scene(HELD_OUT_SEEDS[1], held_out=True).seed == HELD_OUT_SEEDS[1]


def test_demo_settings_are_excluded():
    assert all(demo_settings_excluded(sample_scene(s)) for s in training_seeds(200))


def test_torus_hits_lie_on_the_surface_and_match_the_axis_ray():
    R, r = 1.0, 0.3
    # a ray along -x from x = 5 in the torus plane: first hit at x = R + r
    o = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0], [5.0, 0.0, 0.5]], dtype=torch.float64)
    d = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]], dtype=torch.float64)
    t, _ = intersect_torus(o, d, R, r)
    assert t[0].item() == pytest.approx(5.0 - (R + r), abs=1e-9)
    assert math.isinf(t[1].item())  # down the axis, through the hole
    assert math.isinf(t[2].item())  # above the tube
    g = torch.Generator().manual_seed(0)
    o = torch.randn(4000, 3, generator=g, dtype=torch.float64) * 3
    d = torch.nn.functional.normalize(-o + torch.randn(4000, 3, generator=g, dtype=torch.float64) * 0.5, dim=-1)
    outside = torus_sdf(o, R, r) > 0  # rays start outside, as camera and shadow rays do
    o, d = o[outside], d[outside]
    t, _ = intersect_torus(o, d, R, r)
    hit = torch.isfinite(t)
    assert hit.sum() > 500
    p = o[hit] + t[hit, None] * d[hit]
    assert torus_sdf(p, R, r).abs().max() < 1e-6
    # no earlier crossing: the signed distance is positive along the ray before the hit
    for frac in (0.25, 0.5, 0.9, 0.99):
        assert (torus_sdf(o[hit] + frac * t[hit, None] * d[hit], R, r) > -1e-9).all()
    n = normal_torus(p, torch.zeros(len(p), dtype=torch.long), R, r)
    assert ((n * d[hit]).sum(-1) < 1e-6).all()  # facing the ray


def test_capsule_hits_are_at_distance_radius_from_the_segment():
    g = torch.Generator().manual_seed(1)
    o = torch.randn(3000, 3, generator=g, dtype=torch.float64) * 3
    d = torch.nn.functional.normalize(-o + torch.randn(3000, 3, generator=g, dtype=torch.float64) * 0.4, dim=-1)
    radius, length = 0.4, 1.2
    seg = torch.zeros_like(o)
    seg[:, 2] = o[:, 2].clamp(-length / 2, length / 2)
    outside = (o - seg).norm(dim=-1) > radius
    o, d = o[outside], d[outside]
    t, _ = intersect_capsule(o, d, radius, length)
    hit = torch.isfinite(t)
    assert hit.sum() > 300
    p = o[hit] + t[hit, None] * d[hit]
    axis = torch.zeros_like(p)
    axis[:, 2] = p[:, 2].clamp(-length / 2, length / 2)
    assert ((p - axis).norm(dim=-1) - radius).abs().max() < 1e-9


def test_trace_ids_match_depth_to_objects():
    scene = sample_scene(21, num_views=1, width=48, height=36)
    from san.cameras import generate_rays

    rays = generate_rays(torch.as_tensor(scene.c2w[0]), torch.as_tensor(scene.K[0]), 48, 36)
    t, ids, prim, _ = trace_rays(rays.origins.double(), rays.directions.double(), scene)
    assert torch.isfinite(t).all()
    assert ((ids >= 2) == (prim >= 0)).all()


@pytest.mark.slow
def test_render_views_does_not_depend_on_workers():
    seeds = training_seeds(2, start=40)
    one = render_views(seeds, 1, workers=1, supersample=1)
    two = render_views(seeds, 1, workers=2, supersample=1)
    assert [(v.seed, v.view) for v in one] == [(v.seed, v.view) for v in two]
    assert all(np.array_equal(a.rgb, b.rgb) and np.array_equal(a.ids, b.ids) for a, b in zip(one, two))
