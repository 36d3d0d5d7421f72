"""``train_nerf`` on tiny synthetic scenes built in ``tmp_path``: outputs, learning, resume."""

from __future__ import annotations

import csv
import json
import logging
import math

import numpy as np
import pytest
import torch
from PIL import Image

import san.models.nerf_trainer as nt
import san.pipeline.train_nerf as tn
import san.utils.training as training
from san.cameras import Camera, generate_rays, look_at
from san.data.scene import Frame, Normalization, Scene, load_scene, save_scene
from san.models.nerf import load_nerf
from tests.conftest import tiny_nerf_model

TINY_MODEL = tiny_nerf_model(levels=4, log2_hashmap_size=12, max_resolution=64, proposal_log2_hashmap_size=10)


pytestmark = pytest.mark.usefixtures("one_thread")  # many tiny tensor ops


TINY = {"steps": 6, "rays_per_batch": 64, "checkpoint_every": 3, "log_every": 2, "eval_chunk": 256, "model": TINY_MODEL}


def _texture(p: torch.Tensor) -> torch.Tensor:
    x, y, z = p.unbind(-1)
    return torch.stack(
        [0.5 + 0.4 * torch.sin(3 * x + z), 0.5 + 0.4 * torch.cos(4 * y), 0.5 + 0.3 * torch.sin(2 * (x + y))], -1
    )


def make_scene(root, kind: str = "forward_facing", n: int = 5, w: int = 20, h: int = 14):
    """Forward-facing: cameras near the origin looking at the textured plane z = 3. Unbounded:
    cameras on a circle looking at a textured sphere of radius 0.4 (background: direction colour)."""
    root.mkdir(parents=True, exist_ok=True)
    K = np.array([[18.0, 0, w / 2], [0, 18.0, h / 2], [0, 0, 1]])
    frames = []
    for i in range(n):
        if kind == "forward_facing":
            c2w = np.eye(4)
            c2w[:3, 3] = [0.15 * math.cos(2 * math.pi * i / n), 0.1 * math.sin(2 * math.pi * i / n), 0.0]
        else:
            a = 2 * math.pi * i / n
            c2w = look_at(np.array([math.cos(a), math.sin(a), 0.3]), np.zeros(3), np.array([0.0, 0.0, 1.0]))
        rays = generate_rays(torch.tensor(c2w, dtype=torch.float32), torch.tensor(K, dtype=torch.float32), w, h)
        o, d = rays.origins, rays.directions
        if kind == "forward_facing":
            rgb = _texture(o + ((3.0 - o[:, 2]) / d[:, 2])[:, None] * d)
        else:
            b = (o * d).sum(-1)
            disc = b * b - ((o * o).sum(-1) - 0.16)
            t = -b - torch.sqrt(disc.clamp_min(0))
            rgb = torch.where((disc > 0)[:, None], _texture(o + t[:, None] * d), 0.5 + 0.5 * d)
        img = (rgb.clamp(0, 1).view(h, w, 3).numpy() * 255 + 0.5).astype(np.uint8)
        path = root / f"img{i:02d}.png"
        Image.fromarray(img).save(path)
        frames.append(Frame(str(path), Camera(c2w, K, w, h), split="test" if i == 0 else "train"))
    near, far = (1.33, 4.0) if kind == "forward_facing" else (0.05, 1000.0)
    scene = Scene(tuple(frames), kind, near, far, Normalization.identity(), {"background": None})
    save_scene(scene, root / "cameras.json")
    return root / "cameras.json"


def _outputs(out) -> dict:
    """The rule's declared outputs in folder ``out``."""
    return {"model": out / "model.pt", "metrics": out / "metrics.json", "curve": out / "training_curve.csv"}


def _config(**over):
    return nt.train_nerf_config({**TINY, **over})


def test_training_lowers_the_loss(tmp_path):
    torch.manual_seed(0)
    cams = make_scene(tmp_path / "scene")
    trainer = nt.NeRFTrainer(load_scene(cams), _config(steps=60, rays_per_batch=128), torch.device("cpu"))
    first = [trainer.step()["mse"] for _ in range(5)]
    for _ in range(50):
        last = trainer.step()["mse"]
    assert last < 0.7 * np.mean(first), (first, last)


@pytest.mark.parametrize("kind", ["forward_facing", "unbounded"])
def test_outputs(tmp_path, kind):
    cams = make_scene(tmp_path / "scene", kind)
    out = tmp_path / "nerf"
    metrics = tn.train_nerf(cams, **_outputs(out), config=_config(curve_test_every=4), device="cpu")
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt", "test_renders", "training_curve.csv"]
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["steps"] == 6 and on_disk["encoding_backend"] == "torch" and on_disk["device"] == "cpu"
    assert len(on_disk["per_view"]) == 1 and on_disk["per_view"][0]["frame"] == 0
    assert math.isfinite(on_disk["psnr"]) and 0 < on_disk["ssim"] <= 1 and on_disk["psnr"] == metrics["psnr"]
    assert (out / "test_renders" / "000.png").is_file()
    rows = list(csv.DictReader((out / "training_curve.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6] and list(rows[0]) == [
        "step",
        "loss",
        "psnr",
        "lr",
        "wall_seconds",
        "test_psnr",
    ]
    assert [r["test_psnr"] == "" for r in rows] == [True, False, False]  # steps 4 (curve_test_every) and 6 (last)
    assert all(math.isfinite(float(r["test_psnr"])) for r in rows[1:]) and on_disk["curve_test_seconds"] >= 0
    model = load_nerf(out / "model.pt", "cpu")
    assert model.space.kind == kind


def test_curve_test_psnr_is_the_held_out_psnr_and_changes_no_training(tmp_path):
    """The curve's test PSNR scores held-out pixels (with enough rays it matches the final full-view
    test PSNR), and measuring it at every step draws no RNG: the trained model is bit-identical."""
    cams = make_scene(tmp_path / "scene")
    often = tn.train_nerf(
        cams, **_outputs(tmp_path / "a"), config=_config(curve_test_every=1, curve_test_rays=20000), device="cpu"
    )
    tn.train_nerf(cams, **_outputs(tmp_path / "b"), config=_config(curve_test_every=0), device="cpu")
    rows = list(csv.DictReader((tmp_path / "a" / "training_curve.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6] and all(r["test_psnr"] for r in rows)
    assert float(rows[-1]["test_psnr"]) == pytest.approx(often["psnr"], abs=0.3)
    assert not any(r["test_psnr"] for r in csv.DictReader((tmp_path / "b" / "training_curve.csv").open()))
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_lr_decays_from_lr_to_lr_final(tmp_path):
    cams = make_scene(tmp_path / "scene")
    trainer = nt.NeRFTrainer(load_scene(cams), _config(steps=10), torch.device("cpu"))
    lrs = [trainer.step()["lr"] for _ in range(10)]
    assert lrs[0] == pytest.approx(1e-2) and trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


def _die_after_first_checkpoint(monkeypatch):
    """Make train_nerf's first checkpoint its last act, as if the job were killed right after it."""
    real_save = training.save_checkpoint  # TrainingLoop.save writes train_nerf's checkpoints

    def save_then_die(folder, step, state, keep=2):
        real_save(folder, step, state, keep)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(training, "save_checkpoint", save_then_die)
    return real_save


def test_kill_and_resume_gives_the_uninterrupted_state(tmp_path, monkeypatch):
    cams = make_scene(tmp_path / "scene")
    tn.train_nerf(cams, **_outputs(tmp_path / "a"), config=_config(), device="cpu")

    real_save = _die_after_first_checkpoint(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        tn.train_nerf(cams, **_outputs(tmp_path / "b"), config=_config(), device="cpu")
    assert not (tmp_path / "b" / "model.pt").exists()
    assert [p.name for p in (tmp_path / "b" / "checkpoints").iterdir()] == ["step_0000003.ckpt"]
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    torch.manual_seed(123)  # the resumed run must not depend on the global RNG it starts with
    tn.train_nerf(cams, **_outputs(tmp_path / "b"), config=_config(), device="cpu")

    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    curve = lambda d: [(r["step"], r["loss"]) for r in csv.DictReader((tmp_path / d / "training_curve.csv").open())]  # noqa: E731
    assert curve("a") == curve("b")
    assert not (tmp_path / "b" / "checkpoints").exists()


def test_checkpoint_of_another_config_is_not_reloaded(tmp_path, monkeypatch, caplog):
    cams = make_scene(tmp_path / "scene")
    real_save = _die_after_first_checkpoint(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        tn.train_nerf(cams, **_outputs(tmp_path / "n"), config=_config(), device="cpu")
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    with caplog.at_level(logging.WARNING, logger="san"):
        metrics = tn.train_nerf(cams, **_outputs(tmp_path / "n"), config=_config(seed=1), device="cpu")
    assert "ignoring" in caplog.text and metrics["steps"] == 6


def test_presets_merge_nested_keys():
    cpu = nt.train_nerf_config({"preset": "cpu", "model": {"sampler": {"num_samples": 12}}})
    assert cpu.model.sampler.num_samples == 12
    assert cpu.model.field.grid == nt.train_nerf_config({"preset": "cpu"}).model.field.grid
    paper = nt.train_nerf_config({"preset": "paper"})
    g = paper.model.field.grid
    assert (g.num_levels, g.features_per_level, g.log2_hashmap_size, paper.steps) == (16, 2, 19, 10000)
    assert paper.rays_per_batch * paper.model.sampler.num_samples == 2**18


def test_r2_38_divergence_fails_the_job_naming_the_cause(tmp_path):
    """Issue 13, kind 4 (case R2-38, ``nerf: {lr: 1e5}``): the loss goes NaN; the job fails naming the
    stage and the learning rate, and no model.pt / metrics.json that looks complete is left."""
    from san.utils.checks import NonFiniteError

    torch.manual_seed(0)
    cams = make_scene(tmp_path / "scene")
    out = tmp_path / "nerf"
    with pytest.raises(
        NonFiniteError, match=r"^train_nerf: the loss at step \d+ is not finite .*nerf.lr 100000 too high"
    ):
        tn.train_nerf(
            cams, **_outputs(out), config=_config(steps=40, lr=1e5, lr_final=1e3, checkpoint_every=0), device="cpu"
        )
    assert not (out / "model.pt").exists() and not (out / "metrics.json").exists()
