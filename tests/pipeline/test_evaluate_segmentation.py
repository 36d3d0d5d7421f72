"""evaluate_segmentation end to end on a small synthetic scene: a (randomly initialised) NeRF and
imitation field saved to disk, the TOY teacher, every output written and readable by the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from san.cameras import intrinsics_matrix
from san.data.scene import Frame, Normalization, Scene, save_scene
from san.encodings.hashgrid import HashGridConfig
from san.evaluation.protocol import EvaluationConfig
from san.fields.nerf_field import NeRFFieldConfig
from san.fields.semantic_field import SemanticFieldConfig
from san.imitation.head import FeatureHeadConfig
from san.imitation.model import ImitationModel, save_imitation
from san.models.nerf import NeRFConfig, NeRFModel, save_nerf
from san.pipeline.evaluate_segmentation import evaluate_segmentation
from san.pipeline.report import make_tables, table_outputs
from san.pipeline.time_teacher import time_teacher
from san.rendering.samplers import SamplerConfig, SceneSpace
from san.teachers import TeacherConfig, build_teacher

TEACHER = "toy_multiscale_untrained"


def _scene(image_dir) -> Scene:
    """Nine 40x30 views; only the test views (0 and 8) have image files (time_teacher reads view 0)."""
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
        frames.append(Frame(str(path), 40, 30, K, c2w, split="test" if i % 8 == 0 else "train"))
    return Scene(tuple(frames), "forward_facing", 1.0, 5.0, Normalization.identity())


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("results") / "synthetic" / "toy"
    scene = _scene(root / "images")
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


def test_evaluate_segmentation_writes_every_output(scene_dir, tmp_path):
    out = scene_dir / "evaluation" / "full"
    config = EvaluationConfig(
        render_size=40,
        grid=3,
        qualitative_views=2,
        timing_warmup=0,
        timing_repeats=1,
        timing_encode_warmup=0,
        timing_encode_repeats=1,
    )
    record = evaluate_segmentation(
        scene_dir / "nerf" / "model.pt",
        scene_dir / "poses" / "cameras.json",
        scene_dir / "imitation" / "full" / "field.pt",
        metrics_json=out / "metrics.json",
        clicks_csv=out / "clicks.csv",
        figure_png=out / "qualitative.png",
        dataset="synthetic",
        scene="toy",
        variant="full",
        teacher_config=TeacherConfig(name=TEACHER),
        config=config,
        stats_json=scene_dir / "imitation" / "full" / "train_stats.json",
        device="cpu",
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher"] == TEACHER and metrics["untrained"] is True
    assert metrics["n_views"] == 2 and metrics["n_clicks"] == 18  # test frames 0 and 8
    assert 0.0 <= metrics["mask_iou"] <= 1.0 and 0.0 <= metrics["iou_ceiling"] <= 1.0
    assert metrics["train_minutes"] == pytest.approx(2.0)
    assert set(metrics["timing_ms"]) == {"rgb_render", "teacher_encode", "imitation_encode_volume", "decode"}
    assert metrics["fps"]["original"] > 0 and metrics["imitation_step"] == "imitation_encode_volume"
    assert record["mask_iou"] == metrics["mask_iou"]
    clicks = pd.read_csv(out / "clicks.csv")
    assert len(clicks) == 18 and sorted(clicks["view"].unique()) == [0, 8]
    assert (out / "qualitative.png").stat().st_size > 1000
    tables = make_tables([out / "metrics.json"], table_outputs(tmp_path / "report"))
    assert all(p.is_file() for paths in tables.values() for p in paths)


def test_teacher_timed_once_per_scene_and_reused(scene_dir, tmp_path):
    config = EvaluationConfig(
        render_size=40,
        grid=2,
        max_views=1,
        ceiling=False,
        timing_warmup=0,
        timing_repeats=2,
        timing_encode_warmup=0,
        timing_encode_repeats=1,
    )
    timing_json = tmp_path / "teacher_timing.json"
    record = time_teacher(
        scene_dir / "poses" / "cameras.json",
        timing_json,
        "synthetic",
        "toy",
        TeacherConfig(name=TEACHER),
        config,
        device="cpu",
    )
    assert set(record["timing"]) == {"teacher_encode", "decode"}  # no NeRF: rgb_render is timed per variant
    assert record["timing_teacher"] == TEACHER and record["timing_teacher_untrained"] is True
    assert record["image_hw"] == [30, 40] and record["view"] == "img_000" and record["image"] == "captured"
    assert len(record["timing"]["teacher_encode"]["all"]) == 1 and len(record["timing"]["decode"]["all"]) == 2

    out = tmp_path / "eval"
    metrics = evaluate_segmentation(
        scene_dir / "nerf" / "model.pt",
        scene_dir / "poses" / "cameras.json",
        scene_dir / "imitation" / "full" / "field.pt",
        metrics_json=out / "metrics.json",
        clicks_csv=out / "clicks.csv",
        figure_png=out / "q.png",
        dataset="synthetic",
        scene="toy",
        variant="full",
        teacher_config=TeacherConfig(name=TEACHER),
        config=config,
        device="cpu",
        teacher_timing_json=timing_json,
    )
    assert set(metrics["timing_ms"]) == {"rgb_render", "teacher_encode", "imitation_encode_volume", "decode"}
    for step in ("teacher_encode", "decode"):  # taken from the scene's record, not re-measured
        assert metrics["timing"][step] == record["timing"][step]
    assert len(metrics["timing"]["rgb_render"]["all"]) == 2  # the NeRF's rendering, timed here
    assert metrics["timing_teacher"] == TEACHER and metrics["timing_teacher_untrained"] is True

    with pytest.raises(ValueError, match="render_size 40.*evaluation.render_size is 32"):
        evaluate_segmentation(
            scene_dir / "nerf" / "model.pt",
            scene_dir / "poses" / "cameras.json",
            scene_dir / "imitation" / "full" / "field.pt",
            metrics_json=out / "m2.json",
            clicks_csv=out / "c2.csv",
            figure_png=out / "q2.png",
            dataset="synthetic",
            scene="toy",
            variant="full",
            teacher_config=TeacherConfig(name=TEACHER),
            config=EvaluationConfig(render_size=32),
            device="cpu",
            teacher_timing_json=timing_json,
        )
    assert not (out / "m2.json").exists()


def test_a_timing_teacher_with_weights_must_be_the_quality_teacher(scene_dir, tmp_path):
    with pytest.raises(ValueError, match="must be an untrained one"):
        time_teacher(
            scene_dir / "poses" / "cameras.json",
            tmp_path / "t.json",
            "synthetic",
            "toy",
            TeacherConfig(name=TEACHER),
            EvaluationConfig(render_size=40, timing_teacher="sam_vit_b"),
            device="cpu",
        )
    assert not (tmp_path / "t.json").exists()


def test_field_of_another_teacher_is_refused(scene_dir, tmp_path):
    with pytest.raises(ValueError, match="imitates teacher"):
        evaluate_segmentation(
            scene_dir / "nerf" / "model.pt",
            scene_dir / "poses" / "cameras.json",
            scene_dir / "imitation" / "full" / "field.pt",
            metrics_json=tmp_path / "m.json",
            clicks_csv=tmp_path / "c.csv",
            figure_png=tmp_path / "q.png",
            dataset="synthetic",
            scene="toy",
            variant="full",
            teacher_config=TeacherConfig(name="sam_untrained_tiny"),
            device="cpu",
        )


def test_click_latency_benchmark(scene_dir, tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_click_latency.py"
    spec = importlib.util.spec_from_file_location("bench_click_latency", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "latency.json"
    bench.main(
        [
            "--scene-dir",
            str(scene_dir),
            "--teacher",
            TEACHER,
            "--render-size",
            "40",
            "--warmup",
            "0",
            "--repeats",
            "1",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    record = json.loads(out.read_text())
    assert record["ratio"] == pytest.approx(record["teacher_ms"] / record["imitation_ms"])
    assert record["untrained"] is True and len(record["runs"]["teacher"]) == 1 and record["note"]


def test_time_teacher_needs_the_captured_image(tmp_path):
    from san.data.scene import SceneError

    scene = _scene(tmp_path / "images")
    (tmp_path / "images" / "img_000.png").unlink()
    save_scene(scene, tmp_path / "cameras.json")
    with pytest.raises(SceneError, match="img_000.png"):
        time_teacher(
            tmp_path / "cameras.json",
            tmp_path / "t.json",
            "synthetic",
            "toy",
            TeacherConfig(name=TEACHER),
            EvaluationConfig(render_size=40),
            device="cpu",
        )
    assert not (tmp_path / "t.json").exists()
