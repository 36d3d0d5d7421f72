"""The imitation training loop on an analytic scene with small teachers."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from san.features.cache import FeatureCache
from san.imitation.config import TrainImitationConfig, imitation_config, variant_config
from san.imitation.render import render_features
from san.imitation.trainer import make_trainer

SMALL = dict(
    steps=40,
    rays_per_step=128,
    grid_levels=6,
    grid_features=2,
    grid_log2_hashmap_size=12,
    grid_max_resolution=64,
    head_width=32,
    head_layers=3,
    head_skip=1,
    lr_head=3e-3,
    max_samples_per_ray=8,
    cache_capacity=8,
    checkpoint_every=10,
    log_every=10,
    render_size=40,
)


def small_config(**overrides) -> TrainImitationConfig:
    return imitation_config({**SMALL, **overrides})


def trainer_for(nerf, teacher, cameras, cache_path, variant="full", seed=0, mesh=None, **overrides):
    config = small_config(**overrides)
    cache = FeatureCache(cache_path) if cache_path is not None else None
    return make_trainer(nerf, teacher, cameras, config, variant_config(variant, config), cache, mesh=mesh, seed=seed)


def test_a_few_steps_lower_the_loss(nerf, toy_teacher, cameras, cache_factory):
    trainer = trainer_for(nerf, toy_teacher, cameras, cache_factory(toy_teacher), steps=40)
    losses = [trainer.train_step()["mse"] for _ in range(40)]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    assert trainer.curve[-1]["step"] == 40 and len(trainer.curve) == 4
    assert trainer.counters.teacher_calls == trainer.counters.fresh_views
    assert 0 < trainer.counters.teacher_calls < 40


def test_fresh_fraction_sets_teacher_calls(nerf, single_teacher, cameras, cache_factory):
    path = cache_factory(single_teacher)
    calls = {}
    for name, frac in (("quarter", 0.25), ("all", 1.0), ("none", 0.0)):
        t = trainer_for(nerf, single_teacher, cameras, path, fresh_fraction=frac, steps=24)
        for _ in range(24):
            t.train_step()
        calls[name] = t.counters.teacher_calls
        assert t.stats()["teacher_calls"] == calls[name]
    assert calls == {"quarter": calls["quarter"], "all": 24, "none": 0}
    assert 1 <= calls["quarter"] <= 12  # 6 expected
    no_cache = trainer_for(nerf, single_teacher, cameras, path, variant="no_cache")
    assert no_cache.variant.fresh_fraction == 1.0


def test_no_aug_never_uses_augmented_views(nerf, single_teacher, cameras, cache_factory):
    t = trainer_for(
        nerf, single_teacher, cameras, cache_factory(single_teacher), variant="no_aug", fresh_fraction=0.5, steps=12
    )
    assert t.seeded_views == len(cameras)
    assert all(not e.is_augmented for e in t.fifo)
    for _ in range(12):
        t.train_step()
    assert t.counters.fresh_views > 0
    assert all(not e.is_augmented for e in t.fifo)
    full = trainer_for(nerf, single_teacher, cameras, cache_factory(single_teacher), fresh_fraction=1.0, steps=3)
    for _ in range(3):
        full.train_step()
    assert full.fifo[-1].is_augmented and full.fifo[-1].width == full.fifo[-1].height == 40


def test_resume_gives_the_same_state(tmp_path, nerf, toy_teacher, cameras, cache_factory):
    path = cache_factory(toy_teacher)
    a = trainer_for(nerf, toy_teacher, cameras, path, fresh_fraction=0.5, steps=24)
    a.fit()
    b = trainer_for(nerf, toy_teacher, cameras, path, fresh_fraction=0.5, steps=24)
    b.fit(tmp_path / "ckpt", fingerprint="x", stop_at=13)  # checkpoints at 10 and 13
    c = trainer_for(nerf, toy_teacher, cameras, path, fresh_fraction=0.5, steps=24)
    c.fit(tmp_path / "ckpt", fingerprint="x")
    assert c.step == 24
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, c.model.state_dict()[k]), k
    assert a.counters.teacher_calls == c.counters.teacher_calls
    assert [r["loss"] for r in a.curve] == [r["loss"] for r in c.curve]
    # A checkpoint made with other settings is ignored, not loaded.
    d = trainer_for(nerf, toy_teacher, cameras, path, fresh_fraction=0.5, steps=24)
    assert not d.resume(tmp_path / "ckpt", fingerprint="other") and d.step == 0


def test_mesh_variant_trains_on_surface_points(nerf, single_teacher, cameras, cache_factory):
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.6)
    shell = trimesh.creation.icosphere(subdivisions=2, radius=2.5)
    mesh = trimesh.util.concatenate([sphere, shell])
    mesh_t = (torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces))
    with pytest.raises(ValueError, match="mesh"):
        trainer_for(nerf, single_teacher, cameras, cache_factory(single_teacher), variant="mesh")
    t = trainer_for(nerf, single_teacher, cameras, cache_factory(single_teacher), variant="mesh", mesh=mesh_t, steps=24)
    assert t.model.mesh_surface and not t.model.head_config.use_rgb
    losses = [t.train_step()["mse"] for _ in range(24)]
    assert sum(losses[-5:]) < sum(losses[:5])
    geom, _ = t.fifo[0].geometry[0] if t.fifo[0].geometry else (None, None)
    if geom is not None:
        assert geom.weights.shape[1] == 1 and set(geom.weights.unique().tolist()) <= {0.0, 1.0}
    c = cameras[0]
    maps = render_features(nerf, t.model, c.c2w, c.K, c.width, c.height, mesh=mesh_t)
    assert maps[0].shape == single_teacher.info.feature_shapes[0]


def test_render_features_shapes_and_padding(nerf, toy_teacher, cameras, cache_factory):
    t = trainer_for(nerf, toy_teacher, cameras, cache_factory(toy_teacher), steps=5)
    for _ in range(5):
        t.train_step()
    c = cameras[0]  # 40x30: the lower quarter of each map is padding
    maps = render_features(nerf, t.model, c.c2w, c.K, c.width, c.height)
    assert [tuple(m.shape) for m in maps] == [tuple(s) for s in toy_teacher.info.feature_shapes]
    valid = toy_teacher.valid_hw((c.height, c.width))
    for i, (m, (vh, vw)) in enumerate(zip(maps, valid)):
        assert vh < m.shape[1]
        torch.testing.assert_close(
            m[:, vh:, :], t.model.pad_feature(i)[:, None, None].expand(-1, m.shape[1] - vh, m.shape[2])
        )
        assert m[:, :vh, :vw].std() > 0
    # The training step's view of the same camera predicts the same features.
    from san.imitation.fifo import ViewEntry

    entry = ViewEntry(
        torch.tensor(c.c2w, dtype=torch.float32), torch.tensor(c.K, dtype=torch.float32), c.width, c.height, [], False
    )
    geom, index = t._geometry(entry, 0, None)
    t.model.eval()
    with torch.no_grad():
        direct = t.model(geom, 0)
    flat = maps[0].reshape(maps[0].shape[0], -1)[:, index].T
    torch.testing.assert_close(flat, direct, atol=1e-5, rtol=1e-4)


def test_variants_and_presets():
    assert variant_config("full").fresh_fraction == 0.25
    assert variant_config("no_aug").augment is False
    assert variant_config("mesh").mesh_surface is True
    assert variant_config("no_corr").correlation_loss is False
    with pytest.raises(ValueError, match="variant"):
        variant_config("nope")
    cpu = imitation_config({"preset": "cpu"})
    paper = imitation_config({"preset": "paper"})
    assert paper.grid_levels * paper.grid_features == 128 and paper.grid_max_resolution == 512
    assert paper.cache_capacity == 256 and paper.fresh_fraction == 0.25 and paper.steps == 10_000
    assert cpu.steps < paper.steps
    assert imitation_config({"preset": "cpu", "steps": 7}).steps == 7
    with pytest.raises(ValueError, match="fresh_fraction"):
        dataclasses.replace(paper, fresh_fraction=1.5)
    with pytest.raises(ValueError, match="unknown key"):
        imitation_config({"stepz": 3})
