"""benchmarks/bench_demo_speed.py (its whole code path, with a stub ``snakemake``),
bench_scaling.py, bench_texture_psnr.py's renderer and scripts/make_upsampled_llff.py on tiny
synthetic inputs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]


def test_upsampled_llff_is_deterministic_and_labelled(tmp_path):
    mod = load_script("scripts/make_upsampled_llff.py")
    src = tmp_path / "fern"
    (src / "images_8").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).save(src / "images_8" / f"image{i:03d}.png")
    rows = np.arange(5 * 17, dtype=np.float64).reshape(5, 17)
    np.save(src / "poses_bounds.npy", rows)
    a = mod.make_upsampled(src, tmp_path / "a", every=2)
    b = mod.make_upsampled(src, tmp_path / "b", every=2)
    assert [im["image"] for im in a["images"]] == ["image000.png", "image002.png", "image004.png"]
    assert a["images"] == b["images"] and a["upsampled_from"] == "images_8"  # byte-identical PNGs
    with Image.open(tmp_path / "a" / "images_4" / "image002.png") as im:
        assert im.size == (16, 12)
    assert np.array_equal(np.load(tmp_path / "a" / "poses_bounds.npy"), rows[[0, 2, 4]])
    assert json.loads((tmp_path / "a" / "PROVENANCE.json").read_text())["factor"] == 2
    np.save(src / "poses_bounds.npy", rows[:4])
    with pytest.raises(ValueError, match="4 rows but 5 images"):
        mod.make_upsampled(src, tmp_path / "c")


STUB = """#!/bin/sh
# stand-in for snakemake: writes the figures a demo run leaves
mkdir -p results/demo/demo/nerf results/demo/demo/evaluation/full results/demo/demo/benchmark/full
echo '{"psnr": 28.5}' > results/demo/demo/nerf/metrics.json
echo '{"mask_iou": 0.75, "teacher": "t"}' > results/demo/demo/evaluation/full/metrics.json
echo '{"iou_vs_gt": 0.37, "teacher_iou_vs_gt": 0.38}' > results/demo/demo/benchmark/full/metrics.json
"""


def test_demo_speed_runs_both_sides_and_records_figures(tmp_path):
    mod = load_script("benchmarks/bench_demo_speed.py")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "snakemake"
    stub.write_text(STUB)
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    python = bin_dir / "python"  # prepare(): `san build-kernel` through the side's python, stubbed
    python.write_text(f'#!/bin/sh\necho "$PYTHONPATH" >> {tmp_path / "prepared.txt"}\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    out = tmp_path / "speed.json"
    record = mod.main(["--base", "HEAD", "--repeats", "1", "--python", str(python), "--out", str(out)])
    assert record["prepared_before_timing"] == {"base": "san build-kernel", "head": "san build-kernel"}
    assert len((tmp_path / "prepared.txt").read_text().split()) == 2  # once per side, before the runs
    assert json.loads(out.read_text()) == record
    assert record["repeats"] == 1 and set(record["median_wall_s"]) == {"base", "head"}
    for side in ("base", "head"):
        (run,) = record["runs"][side]
        assert run["figures"] == {
            "nerf_psnr": 28.5,
            "iou_full": 0.75,
            "teacher": "t",
            "gt_miou_full": 0.37,
            "gt_teacher_miou_full": 0.38,
        }
    worktrees = os.popen(f"git -C {ROOT} worktree list").read()
    assert "san-demo-speed-" not in worktrees  # removed again


def test_scaling_scenes_and_plot(tmp_path):
    mod = load_script("benchmarks/bench_scaling.py")
    src = tmp_path / "fern"
    (src / "images_8").mkdir(parents=True)
    for i in range(6):
        Image.new("RGB", (40, 30), (i * 40, 0, 0)).save(src / "images_8" / f"image{i:03d}.png")
    np.save(src / "poses_bounds.npy", np.arange(6 * 17, dtype=np.float64).reshape(6, 17))
    assert mod.make_scene(src, tmp_path / "s", 3, 20) == (20, 15)
    assert sorted(p.name for p in (tmp_path / "s" / "images_8").iterdir()) == [
        "image000.png",
        "image002.png",  # round(2.5) -> 2: evenly spread, first and last kept
        "image005.png",
    ]
    assert np.array_equal(np.load(tmp_path / "s" / "poses_bounds.npy")[:, 0], [0.0, 34.0, 85.0])
    with pytest.raises(ValueError, match="asked for 9"):
        mod.make_scene(src, tmp_path / "t", 9, 20)
    rows = [
        {"images": n, "width": w, "height": w * 3 // 4, "pixels": n * w * w * 3 // 4, "stage": s, "wall_s": 1.0 * n}
        | {"peak_rss_mb": 100.0 + w}
        for n, w in ((3, 20), (6, 20), (6, 40))
        for s in mod.STAGES
    ]
    mod.plot(rows, tmp_path / "p.png", fixed_count=6, fixed_width=20)
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_texture_benchmark_render_box_filters_and_counts_fully_covered_pixels():
    """bench_texture_psnr.render_view on a plane whose edge crosses pixel column 1 at x = 1.6 px:
    one ray per pixel centre hits columns 0 and 1; with 2x2 sub-rays column 1 is only half covered
    (sub-rays at 1.25 and 1.75), so only column 0 counts, and a counted pixel is the exact colour."""
    from types import SimpleNamespace

    import trimesh

    from san.mesh.texture import UVAtlas

    mod = load_script("benchmarks/bench_texture_psnr.py")
    # OpenCV camera at the origin looking along +z; u = 4 X / Z + 2, so X = -0.1 at Z = 1 is u = 1.6.
    frame = SimpleNamespace(
        c2w=np.eye(4), K=np.array([[4.0, 0, 2], [0, 4.0, 2], [0, 0, 1]]), width=4, height=4, distortion=None
    )
    vertices = np.array([[-3.0, -3, 1], [-0.1, -3, 1], [-0.1, 3, 1], [-3.0, 3, 1]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    mesh.visual.vertex_colors = np.tile([255, 0, 0, 255], (4, 1)).astype(np.uint8)
    atlas = UVAtlas(np.arange(4), faces, np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32), 2, 2)
    texture = np.zeros((2, 2, 3), np.uint8)
    texture[..., 1] = 255
    one = mod.render_view(mesh, atlas, texture, frame, supersample=1)
    box = mod.render_view(mesh, atlas, texture, frame, supersample=2)
    assert one["hit"][:, :2].all() and not one["hit"][:, 2:].any()
    assert box["hit"][:, 0].all() and not box["hit"][:, 1:].any()
    for r in (one, box):
        assert np.allclose(r["texture"][r["hit"]], [0, 1, 0]) and np.allclose(r["vertex"][r["hit"]], [1, 0, 0])
    assert np.allclose(box["texture"][:, 1], [0, 0.5, 0])  # half the sub-rays: a blended (uncounted) pixel
