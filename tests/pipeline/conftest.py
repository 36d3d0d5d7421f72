"""Fixtures shared by the pipeline tests.

* ``scene_dir``: a tiny trained scene folder as the rules lay it out (``poses/cameras.json``,
  ``nerf/model.pt``, ``imitation/full/field.pt`` imitating :data:`TEACHER`, its ``train_stats.json``),
  built once per test module from randomly initialised models.
* ``fake_results``: two fake scenes' evaluation metrics, qualitative panels and training curves, as
  the report reads them.
* ``restore_root_logging``: undoes what ``run_rule`` does to the root logger (``force=True``).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imsave
from PIL import Image

from san.cameras import Camera, intrinsics_matrix
from san.data.scene import Frame, Normalization, Scene, save_scene
from san.encodings.config import HashGridConfig
from san.fields.config import NeRFFieldConfig, SemanticFieldConfig
from san.imitation.config import FeatureHeadConfig
from san.imitation.model import ImitationModel, save_imitation
from san.models.config import NeRFConfig
from san.models.nerf import NeRFModel, save_nerf
from san.rendering.config import SamplerConfig
from san.rendering.samplers import SceneSpace
from san.teachers import build_teacher

TEACHER = "toy_multiscale_untrained"


# ------------------------------------------------------------------ a tiny trained scene


def make_scene(image_dir) -> Scene:
    """Nine 40x30 forward-facing views along x; frames 0 and 8 are test views, and only they have
    image files (time_teacher encodes the first test view's captured image)."""
    K = intrinsics_matrix(40.0, 40.0, 20.0, 15.0)
    frames = []
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(9):
        c2w = np.eye(4)
        c2w[0, 3] = 0.05 * (i - 4)
        path = image_dir / f"img_{i:03d}.png"
        if i % 8 == 0:
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(path)
        frames.append(Frame(str(path), Camera(c2w, K, 40, 30), split="test" if i % 8 == 0 else "train"))
    return Scene(tuple(frames), "forward_facing", 1.0, 5.0, Normalization.identity())


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("results") / "synthetic" / "toy"
    scene = make_scene(root / "images")
    save_scene(scene, root / "poses" / "cameras.json")
    small = HashGridConfig(num_levels=4, features_per_level=2, log2_hashmap_size=10)
    config = NeRFConfig(
        field=NeRFFieldConfig(grid=small), sampler=SamplerConfig(kind="uniform", num_samples=8), backend="torch"
    )
    (root / "nerf").mkdir()
    save_nerf(NeRFModel(config, SceneSpace.from_scene(scene), "cpu"), root / "nerf" / "model.pt")
    teacher = build_teacher(TEACHER, device="cpu")
    field = ImitationModel(
        SemanticFieldConfig(num_levels=4, features_per_level=2, log2_hashmap_size=10, max_resolution=64),
        FeatureHeadConfig(width=16, layers=2),
        teacher.info.feature_shapes,
        teacher.info.input_size,
        backend="torch",
    )
    (root / "imitation" / "full").mkdir(parents=True)
    save_imitation(field, root / "imitation" / "full" / "field.pt", {"teacher": TEACHER})
    (root / "imitation" / "full" / "train_stats.json").write_text(json.dumps({"wall_s": 120.0}))
    return root


# ------------------------------------------------------------------ a report's fake inputs

SCENES = (("demo", "demo"), ("llff", "fern"))
VARIANTS = ("full", "no_aug", "mesh")  # mesh only for demo/demo


def fake_metrics(dataset, scene, variant, iou):
    encode = "imitation_encode_mesh" if variant == "mesh" else "imitation_encode_volume"
    imitation_ms = 4.0 if variant == "mesh" else 10.0
    fps = {"original": 1000 / 60050, "imitation": 1000 / (50 + imitation_ms), "speedup": 60050 / (50 + imitation_ms)}
    fps["imitation_mesh" if variant == "mesh" else "imitation_volume"] = fps["imitation"]
    return {
        "dataset": dataset,
        "scene": scene,
        "variant": variant,
        "teacher": "sam_untrained_tiny",
        "untrained": True,
        "timing_teacher": "sam_vit_h_untrained",
        "timing_teacher_untrained": True,
        "device": "cpu",
        "render_size": 128,
        "n_views": 3,
        "mask_iou": iou,
        "feature_mse": 0.01 if variant == "full" else 0.02,
        "feature_cosine": 0.9,
        "iou_ceiling": 0.95,
        "train_minutes": 2.5,
        "timing_ms": {"rgb_render": 20.0, "teacher_encode": 60000.0, encode: imitation_ms, "decode": 30.0},
        "fps": fps,
    }


@pytest.fixture
def fake_results(tmp_path):
    """``(metrics, curves)``: the metrics.json files (demo/demo full, no_aug, mesh; llff/fern full,
    no_aug) and the training curves (one NeRF curve per scene, one imitation curve per variant)."""
    metrics, curves, iou = [], [], 0.7
    for dataset, scene in SCENES:
        base = tmp_path / "results" / dataset / scene
        nerf_curve = base / "nerf" / "training_curve.csv"
        nerf_curve.parent.mkdir(parents=True)
        pd.DataFrame({"step": [0, 10, 20], "loss": [0.1, 0.05, 0.02], "psnr": [10, 15, 20]}).to_csv(
            nerf_curve, index=False
        )
        curves.append(nerf_curve)
        for variant in VARIANTS:
            if variant == "mesh" and scene != "demo":
                continue
            iou += 0.05
            folder = base / "evaluation" / variant
            folder.mkdir(parents=True)
            (folder / "metrics.json").write_text(json.dumps(fake_metrics(dataset, scene, variant, iou)))
            imsave(folder / "qualitative.png", np.random.default_rng(0).random((20, 60, 3)))
            metrics.append(folder / "metrics.json")
            curve = base / "imitation" / variant / "training_curve.csv"
            curve.parent.mkdir(parents=True)
            pd.DataFrame({"step": [0, 5], "loss": [1.0, 0.5]}).to_csv(curve, index=False)
            curves.append(curve)
    return metrics, curves


def figure_files(out):
    """plot_figures' four output files in ``out``: IoU, timing, qualitative grid, training curves."""
    return out / "iou.png", out / "timing.png", out / "qual.png", out / "curves.png"


# ------------------------------------------------------------------ logging


@pytest.fixture
def restore_root_logging():
    """``run_rule`` reconfigures the root logger (``force=True``); put its handlers and level back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)
