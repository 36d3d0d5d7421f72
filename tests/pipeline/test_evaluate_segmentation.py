"""evaluate_segmentation end to end on a small synthetic scene: a (randomly initialised) NeRF and
imitation field saved to disk, the TOY teacher, every output written and readable by the report."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from san.evaluation.config import EvaluationConfig
from san.pipeline.evaluate_segmentation import evaluate_segmentation
from san.pipeline.report import make_tables, table_outputs
from san.pipeline.time_teacher import time_teacher
from san.teachers import TeacherConfig
from tests.conftest import load_script
from tests.pipeline.conftest import TEACHER, make_scene


def _evaluate(scene_dir, out, figure="qualitative.png", metrics="metrics.json", clicks="clicks.csv", **kwargs):
    """Rule evaluate_segmentation on the ``full`` variant of ``scene_dir`` (synthetic/toy), outputs in ``out``."""
    kwargs.setdefault("teacher_config", TeacherConfig(name=TEACHER))
    return evaluate_segmentation(
        scene_dir / "nerf" / "model.pt",
        scene_dir / "poses" / "cameras.json",
        scene_dir / "imitation" / "full" / "field.pt",
        metrics_json=out / metrics,
        clicks_csv=out / clicks,
        figure_png=out / figure,
        dataset="synthetic",
        scene="toy",
        variant="full",
        device="cpu",
        **kwargs,
    )


def _time_teacher(scene_dir, out_json, config):
    """Rule time_teacher on ``scene_dir`` (synthetic/toy) with the toy teacher."""
    return _time_teacher_at(scene_dir / "poses" / "cameras.json", out_json, config)


def _time_teacher_at(cameras_json, out_json, config):
    return time_teacher(
        cameras_json,
        out_json,
        "synthetic",
        "toy",
        TeacherConfig(name=TEACHER),
        config,
        device="cpu",
    )


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
    record = _evaluate(scene_dir, out, config=config, stats_json=scene_dir / "imitation" / "full" / "train_stats.json")
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
    record = _time_teacher(scene_dir, timing_json, config)
    assert set(record["timing"]) == {"teacher_encode", "decode"}  # no NeRF: rgb_render is timed per variant
    assert record["timing_teacher"] == TEACHER and record["timing_teacher_untrained"] is True
    assert record["image_hw"] == [30, 40] and record["view"] == "img_000" and record["image"] == "captured"
    assert len(record["timing"]["teacher_encode"]["all"]) == 1 and len(record["timing"]["decode"]["all"]) == 2

    out = tmp_path / "eval"
    metrics = _evaluate(scene_dir, out, figure="q.png", config=config, teacher_timing_json=timing_json)
    assert set(metrics["timing_ms"]) == {"rgb_render", "teacher_encode", "imitation_encode_volume", "decode"}
    for step in ("teacher_encode", "decode"):  # taken from the scene's record, not re-measured
        assert metrics["timing"][step] == record["timing"][step]
    assert len(metrics["timing"]["rgb_render"]["all"]) == 2  # the NeRF's rendering, timed here
    assert metrics["timing_teacher"] == TEACHER and metrics["timing_teacher_untrained"] is True

    with pytest.raises(ValueError, match="render_size 40.*evaluation.render_size is 32"):
        _evaluate(
            scene_dir,
            out,
            figure="q2.png",
            metrics="m2.json",
            clicks="c2.csv",
            config=EvaluationConfig(render_size=32),
            teacher_timing_json=timing_json,
        )
    assert not (out / "m2.json").exists()


def test_a_timing_teacher_with_weights_must_be_the_quality_teacher(scene_dir, tmp_path):
    with pytest.raises(ValueError, match="must be an untrained one"):
        _time_teacher(scene_dir, tmp_path / "t.json", EvaluationConfig(render_size=40, timing_teacher="sam_vit_b"))
    assert not (tmp_path / "t.json").exists()


def test_field_of_another_teacher_is_refused(scene_dir, tmp_path):
    with pytest.raises(ValueError, match="imitates teacher"):
        _evaluate(
            scene_dir,
            tmp_path,
            figure="q.png",
            metrics="m.json",
            clicks="c.csv",
            teacher_config=TeacherConfig(name="sam_untrained_tiny"),
        )


def test_click_latency_benchmark(scene_dir, tmp_path):
    bench = load_script("benchmarks/bench_click_latency.py")
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
    from san.data.scene import SceneError, save_scene

    scene = make_scene(tmp_path / "images")
    (tmp_path / "images" / "img_000.png").unlink()
    save_scene(scene, tmp_path / "cameras.json")
    with pytest.raises(SceneError, match="img_000.png"):
        _time_teacher_at(tmp_path / "cameras.json", tmp_path / "t.json", EvaluationConfig(render_size=40))
    assert not (tmp_path / "t.json").exists()


def test_scene_text_prompts_for_a_teacher_without_text_head_fail_before_loading(tmp_path):
    """The scene's list (rule evaluate_segmentation's params) is checked against the teacher before
    any model loads: the inputs here do not even exist. Same check, and same messages, as at DAG
    build (:func:`san.teachers.preflight.check_text_prompts`)."""
    from san.teachers import TeacherError

    with pytest.raises(
        TeacherError, match=r"text_prompts gives text prompts \(scene 'synthetic/toy': \['a red box'\]\), but teacher"
    ):
        _evaluate(tmp_path / "absent", tmp_path, text_prompts=["a red box"])
    with pytest.raises(TeacherError, match=r"evaluation.text_prompts \['a dog'\]: teacher '\w+' has no text head"):
        _evaluate(tmp_path / "absent", tmp_path, config=EvaluationConfig(text_prompts=("a dog",)))
    assert not list(tmp_path.iterdir())


def test_the_scene_text_prompts_reach_the_protocol(scene_dir, tmp_path, monkeypatch):
    """``text_prompts`` replaces ``evaluation.text_prompts`` in protocol step 7 (``[]`` turns it off);
    ``None`` keeps the config's list. The toy teacher is declared text-capable and the protocol
    stopped on entry, so only the routing of the list is checked."""
    import san.pipeline.evaluate_segmentation as module
    import san.teachers

    seen = []

    class Stop(Exception):
        pass

    def record(*args, texts=(), **kwargs):
        seen.append(tuple(texts))
        raise Stop

    monkeypatch.setattr(san.teachers, "teacher_supports_text", lambda name: True)
    monkeypatch.setattr(module, "evaluate_views", record)
    config = EvaluationConfig(render_size=40, text_prompts=("a dog",))
    for given in (["a red box", "the ground"], [], None):
        with pytest.raises(Stop):
            _evaluate(scene_dir, tmp_path, config=config, text_prompts=given)
    assert seen == [("a red box", "the ground"), (), ("a dog",)]
