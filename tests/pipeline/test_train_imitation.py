"""Rule train_imitation end to end on files: a tiny (untrained) NeRF, the toy teacher's cache."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import trimesh

from san.cameras import Camera, intrinsics_matrix, look_at
from san.config import from_dict
from san.data.scene import Frame, Normalization, Scene, save_scene
from san.features.build import cache_features
from san.features.config import CacheFeaturesConfig
from san.imitation.config import imitation_config
from san.imitation.model import load_imitation
from san.imitation.render import render_features
from san.models.config import NeRFConfig
from san.models.nerf import NeRFModel, load_nerf, save_nerf
from san.pipeline.train_imitation import train_imitation
from san.rendering.samplers import SceneSpace
from san.teachers import TeacherConfig, build_teacher

TEACHER = "toy_multiscale_untrained"


pytestmark = pytest.mark.usefixtures("one_thread")  # many tiny tensor ops


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """cameras.json (4 train + 2 test views), model.pt (tiny NeRF), the toy teacher's cache, a mesh."""
    root = tmp_path_factory.mktemp("scene")
    K = intrinsics_matrix(40.0, 40.0, 24.0, 18.0)
    frames = []
    for i, a in enumerate(np.linspace(0, 1.5, 6)):
        c2w = look_at([2 * np.cos(a), 2 * np.sin(a), 0.6], [0, 0, 0], [0, 0, 1])
        frames.append(Frame(f"img{i}.png", Camera(c2w, K, 48, 36), split="test" if i in (2, 5) else "train"))
    scene = Scene(tuple(frames), "unbounded", 0.5, 4.0, Normalization.identity())
    save_scene(scene, root / "cameras.json")
    torch.manual_seed(0)
    config = _tiny_nerf_config()
    nerf = NeRFModel(config, SceneSpace("unbounded", 0.5, 4.0), "cpu")
    save_nerf(nerf, root / "model.pt")
    teacher = build_teacher(TEACHER, device="cpu")
    cache_features(
        lambda camera: nerf.render_camera(camera)["rgb"],
        scene.train_frames,
        root / f"{TEACHER}.h5",
        teacher,
        CacheFeaturesConfig(num_augmented=2, render_size=32),
        "0" * 64,
    )
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.8)
    mesh.export(root / "mesh_normalized.ply")
    return root


def _tiny_nerf_config() -> NeRFConfig:
    return from_dict(
        NeRFConfig,
        {
            "field": {
                "grid": {"num_levels": 4, "features_per_level": 2, "log2_hashmap_size": 12, "max_resolution": 64},
                "hidden_dim": 16,
                "color_hidden_dim": 16,
                "color_hidden_layers": 1,
                "sh_degree": 2,
            },
            "sampler": {"kind": "uniform", "num_samples": 16},
            "backend": "torch",
        },
        "nerf.model",
    )


def small(**overrides):
    base = dict(
        preset="cpu",
        steps=12,
        rays_per_step=64,
        grid_levels=4,
        grid_features=2,
        grid_log2_hashmap_size=12,
        grid_max_resolution=64,
        head_width=32,
        head_layers=3,
        head_skip=1,
        cache_capacity=4,
        checkpoint_every=5,
        log_every=4,
        eval_views=1,
        render_size=32,
    )
    return imitation_config({**base, **overrides})


def run(inputs, out, variant="full", **overrides):
    return train_imitation(
        inputs / "model.pt",
        inputs / "cameras.json",
        inputs / f"{TEACHER}.h5",
        **outputs(out),
        config=small(**overrides),
        variant=variant,
        teacher_config=TeacherConfig(TEACHER),
        mesh_path=inputs / "mesh_normalized.ply" if variant == "mesh" else None,
        device="cpu",
        seed=0,
    )


def outputs(out) -> dict:
    """The rule's declared outputs in folder ``out``."""
    return {"field": out / "field.pt", "curve": out / "training_curve.csv", "stats": out / "train_stats.json"}


def test_outputs_and_stats(inputs, tmp_path):
    out = tmp_path / "imitation" / "full"
    stats = run(inputs, out)
    assert sorted(p.name for p in out.iterdir()) == ["field.pt", "train_stats.json", "training_curve.csv"]
    record = json.loads((out / "train_stats.json").read_text())
    assert record["steps"] == 12 and record["teacher"]["name"] == TEACHER and record["teacher"]["untrained"] is True
    assert record["variant"] == {
        "name": "full",
        "augment": True,
        "fresh_fraction": 0.25,
        "mesh_surface": False,
        "correlation_loss": True,
    }
    assert record["teacher_calls"] == stats["teacher_calls"] == record["fresh_views"]
    q = record["quality"]
    assert set(q["after"]) == {"train", "test"} and q["after"]["test"]["views"] == 1 and "mse_drop" in q
    rows = list(csv.DictReader((out / "training_curve.csv").open()))
    assert [int(r["step"]) for r in rows] == [4, 8, 12]
    assert {"step", "loss", "cosine", "lr", "teacher_calls", "wall_s"} <= set(rows[0])
    model = load_imitation(out / "field.pt")
    assert model.metadata["teacher"] == TEACHER and model.metadata["teacher_info"]["untrained"] and model.num_maps == 2
    assert model.head_config.latent_dim > 0  # the NeRF's geometry features are part of the head input
    nerf = load_nerf(inputs / "model.pt", "cpu")
    f = json.loads((inputs / "cameras.json").read_text())["frames"][2]
    maps = render_features(nerf, model, np.array(f["c2w"]), np.array(f["K"]), f["width"], f["height"])
    assert [tuple(m.shape) for m in maps] == [(32, 32, 32), (64, 16, 16)]


def test_interrupted_run_resumes_to_the_same_field(inputs, tmp_path):
    ref = tmp_path / "ref"
    run(inputs, ref, fresh_fraction=0.5)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        _run_and_interrupt(inputs, out, at_step=7)
    assert (out / "checkpoints").is_dir() and not (out / "field.pt").exists()
    run(inputs, out, fresh_fraction=0.5)
    a, b = torch.load(ref / "field.pt", weights_only=False), torch.load(out / "field.pt", weights_only=False)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    sa, sb = (json.loads((d / "train_stats.json").read_text()) for d in (ref, out))
    assert sa["teacher_calls"] == sb["teacher_calls"]
    for split in ("train", "test"):  # measured before the interruption, restored from the checkpoint
        assert sa["quality"]["before"][split]["mse"] == sb["quality"]["before"][split]["mse"]
    assert not (out / "checkpoints").exists()


def _run_and_interrupt(inputs, out, at_step):
    from san.imitation import trainer as trainer_module

    original = trainer_module.ImitationTrainer.train_step

    def step_then_stop(self):
        if self.step == at_step:
            raise KeyboardInterrupt
        return original(self)

    trainer_module.ImitationTrainer.train_step = step_then_stop
    try:
        run(inputs, out, fresh_fraction=0.5)
    finally:
        trainer_module.ImitationTrainer.train_step = original


def test_mesh_variant_and_wrong_teacher(inputs, tmp_path):
    stats = run(inputs, tmp_path / "mesh", variant="mesh", steps=6)
    assert stats["variant"]["mesh_surface"] is True
    assert load_imitation(tmp_path / "mesh" / "field.pt").mesh_surface
    with pytest.raises(ValueError, match="configured teacher"):
        train_imitation(
            inputs / "model.pt",
            inputs / "cameras.json",
            inputs / f"{TEACHER}.h5",
            **outputs(tmp_path / "x"),
            config=small(),
            variant="full",
            teacher_config=TeacherConfig("sam_untrained_tiny"),
            device="cpu",
            seed=0,
        )
