"""Bad captures from real users (issue 13, kinds 1-3): partial or swapped captures, paths written by
other tools, problems that must surface in ``prepare_poses`` and not after training.

The ``B2-*`` / ``R2-*`` inputs are built by the scripts in ``../shared/cases`` (fixture
``build_case``); the other tests build the same kinds of fault by hand, for the loaders the cases do
not cover.
"""

from __future__ import annotations

import json
import shutil
import struct
import warnings

import numpy as np
import pytest
from PIL import Image

from san.cameras import look_at
from san.config import ConfigError
from san.data import colmap, llff
from san.data.config import PreparePosesConfig
from san.data.images import verify_image
from san.data.prepare import prepare_scene
from san.data.scene import CaptureWarning, SceneError
from san.data.transforms_json import MissingFramesWarning, load_transforms
from san.pipeline.settings import read_scene_sheet
from san.utils.tsv import read_sheet

# ------------------------------------------------------------------ kind 1: partial or swapped capture


def test_b2_02_default_model_smaller_than_another_is_refused_with_counts(build_case):
    case = build_case("B2-02")
    with pytest.raises(SceneError) as info:
        prepare_scene(case)
    msg = str(info.value)
    assert "sparse/0 (5 images)" in msg and "sparse/1 (20 images)" in msg and "20 photos in images" in msg
    assert "colmap_model" in msg and "sparse/1" in msg


def test_b2_02_the_sheet_chooses_the_model(build_case, tmp_path):
    case = build_case("B2-02")
    sheet = tmp_path / "scenes.tsv"
    sheet.write_text(f"scene\tpath\tformat\tcolmap_model\ncolmap/split\t{case}\tauto\tsparse/1\n")
    row = read_scene_sheet(sheet).loc["colmap/split"]
    assert row["colmap_model"] == "sparse/1"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CaptureWarning)  # an explicit, complete choice: nothing to warn about
        scene = prepare_scene(case, colmap_model=row["colmap_model"])
    assert len(scene.frames) == 20
    # Choosing the small model on purpose works, but says how partial it is.
    with pytest.warns(CaptureWarning, match=r"registers 5 images; 15 of the 20 photos .* are not registered"):
        assert len(prepare_scene(case, colmap_model="sparse/0").frames) == 5
    with pytest.raises(
        SceneError, match=r"sparse/7: no COLMAP model .*models found: sparse/0 \(5 images\), sparse/1 \(20 images\)"
    ):
        prepare_scene(case, colmap_model="sparse/7")


def _write_llff(root, n=4, size=(8, 6)):
    down = np.array([0.0, -1.0, 0.0])
    xs = np.linspace(-1.5, 1.5, n)
    c2w = np.stack([look_at(np.array([x, 0.0, -4.0]), np.zeros(3), down) for x in xs])
    llff.write_poses_bounds(root / "poses_bounds.npy", c2w, (12.0, 16.0, 14.0), np.tile([1.0, 9.0], (n, 1)))
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", size, (10 * i, 80, 120)).save(root / "images" / f"img_{i:02d}.png")
    return c2w


def _colmap_text_scene(root, n=4, two_lines=True, declared=None):
    c2w = _write_llff(root, n)
    (root / "poses_bounds.npy").unlink()
    sparse = root / "sparse" / "0"
    sparse.mkdir(parents=True)
    (sparse / "cameras.txt").write_text("# CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n1 PINHOLE 8 6 7.0 7.0 4.0 3.0\n")
    lines = [
        "# Image list with two lines of data per image:",
        f"# Number of images: {declared if declared is not None else n}",
    ]
    for i in range(n):
        im = colmap.image_from_c2w(i + 1, c2w[i], 1, f"img_{i:02d}.png")
        lines.append(" ".join(str(v) for v in (im.id, *im.qvec, *im.tvec, im.camera_id, im.name)))
        if two_lines:
            lines.append("")
    (sparse / "images.txt").write_text("\n".join(lines) + "\n")
    return sparse


def test_hand_written_images_txt_with_one_line_per_image_is_refused(tmp_path):
    sparse = _colmap_text_scene(tmp_path, two_lines=False)
    with pytest.raises(
        SceneError,
        match=r"images.txt: line '2 .* img_01.png' is an image line where the 2D points line of image 1 was expected",
    ):
        colmap.read_images(sparse / "images.txt")


def test_images_txt_count_disagreeing_with_its_header_is_refused(tmp_path):
    sparse = _colmap_text_scene(tmp_path, declared=5)
    with pytest.raises(SceneError, match=r"the header declares 5 images but 4 were read"):
        colmap.read_images(sparse / "images.txt")


def test_images_bin_with_more_data_than_declared_is_refused(tmp_path):
    images = [colmap.ColmapImage(i, (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, float(i)), 1, f"{i}.png") for i in (1, 2)]
    colmap.write_model_binary(tmp_path, [colmap.ColmapCamera(1, "PINHOLE", 8, 6, (7.0, 7.0, 4.0, 3.0))], images)
    raw = bytearray((tmp_path / "images.bin").read_bytes())
    raw[:8] = struct.pack("<Q", 1)  # the file now says 1 image but holds 2
    (tmp_path / "images.bin").write_bytes(bytes(raw))
    with pytest.raises(SceneError, match=r"images.bin: .*declares 1 images but holds more data"):
        colmap.read_images(tmp_path / "images.bin")


def test_colmap_photos_without_pose_are_counted(tmp_path):
    _colmap_text_scene(tmp_path)
    Image.new("RGB", (8, 6)).save(tmp_path / "images" / "img_99.png")
    with pytest.warns(
        CaptureWarning, match=r"registers 4 images; 1 of the 5 photos .* not registered \(first: img_99.png\)"
    ):
        colmap.load_colmap(tmp_path)


def test_b2_15_hash_in_a_path_is_kept_and_bad_rows_show_their_line(tmp_path):
    capture = tmp_path / "run#2"
    capture.mkdir()
    (tmp_path / "run").mkdir()  # the sibling that the old reader silently used
    for header, row in (
        ("scene\tpath\tformat", f"llff/fern_run2\t{capture}\tauto"),
        ("scene\tformat\tpath", f"llff/fern_run2\tauto\t{capture}"),
    ):
        sheet = tmp_path / "sheet.tsv"
        sheet.write_text(f"# a comment line\n{header}\n{row}\n")
        df = read_scene_sheet(sheet)
        assert df.loc["llff/fern_run2", "path"] == str(capture) and df.loc["llff/fern_run2", "format"] == "auto"
    sheet.write_text(f"scene\tpath\tformat\nllff/x\t{capture}\tllf\n")
    with pytest.raises(ConfigError) as info:
        read_scene_sheet(sheet)
    assert "format 'llf' is not one of" in str(info.value) and f"line 2: 'llff/x\\t{capture}\\tllf'" in str(info.value)
    sheet.write_text(f"scene\tpath\tformat\nllff/x\t{capture}\tauto\textra\n")
    with pytest.raises(ConfigError, match=r"line 2 has 4 tab-separated fields, the header has 3"):
        read_scene_sheet(sheet)


def test_prompts_file_keeps_hash_in_an_object_name(tmp_path):
    from san.interaction.prompts import read_prompts

    tsv = tmp_path / "p.tsv"
    tsv.write_text("# clicks\nscene\tview\tx\ty\tlabel\tobject\ndemo/a\t0\t1.5\t2.5\t1\tmug#2\n")
    df = read_prompts(tsv)
    assert df["object"].tolist() == ["mug#2"] and df["line"].tolist() == [3]
    assert read_sheet(tsv).rows[0].raw.endswith("mug#2")


# ------------------------------------------------------------------ kind 2: paths as their writers mean them


@pytest.mark.parametrize("case", ["B2-03", "B2-04"])
def test_transforms_paths_without_suffix_or_with_backslashes(build_case, case):
    scene = prepare_scene(build_case(case))
    assert len(scene.frames) == 20 and scene.source["format"] == "nerfstudio"
    assert all(f.image.endswith(".jpg") for f in scene.frames)


def test_transforms_not_found_shows_the_paths_tried(tmp_path):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 6)).save(tmp_path / "images" / "a.png")
    frames = [
        {"file_path": "images/a.png", "transform_matrix": np.eye(4).tolist()},
        {"file_path": "imgs\\b", "transform_matrix": np.eye(4).tolist()},
    ]
    (tmp_path / "transforms.json").write_text(json.dumps({"fl_x": 7.0, "frames": frames}))
    with pytest.warns(MissingFramesWarning, match="skipped 1 of 2 frames") as caught:
        load_transforms(tmp_path)
    assert (
        f"'imgs\\\\b' -> {tmp_path / 'imgs' / 'b'} (a path without an image suffix was also tried with .png, .jpg"
        in str(caught[0].message)
    )
    frames[0]["file_path"] = "images/zz.png"
    (tmp_path / "transforms.json").write_text(json.dumps({"fl_x": 7.0, "frames": frames}))
    with pytest.raises(SceneError, match="none of the 2 frames") as info:
        load_transforms(tmp_path)
    assert f"paths tried: file_path 'images/zz.png' -> {tmp_path / 'images' / 'zz.png'};" in str(info.value)


# ------------------------------------------------------------------ kind 3: checked in prepare_poses


def test_b2_06_blender_without_test_file_gets_the_documented_fallback_split(build_case):
    with pytest.warns(CaptureWarning, match=r"transforms_train.json: no test frames .*every 8th train frame"):
        scene = prepare_scene(build_case("B2-06"))
    assert len(scene.test_frames) == 2 and len(scene.train_frames) == 8


def test_no_held_out_views_is_refused_before_training():
    with pytest.raises(ConfigError, match=r"poses.test_every: must be >= 1 .*held-out views"):
        PreparePosesConfig(test_every=0)


def test_r2_02b_truncated_held_out_image_fails_in_prepare_poses(build_case, tmp_path):
    from san.pipeline.prepare_poses import prepare_poses

    out = tmp_path / "cameras.json"
    with pytest.raises(SceneError, match=r"images_8/image008.png: cannot decode image, the file is truncated"):
        prepare_poses(build_case("R2-02b") / "scene", out)
    assert not out.exists()


def test_truncated_image_of_another_loader_fails_too(tmp_path):
    """Same kind, COLMAP loader and a JPEG: the header reads, the pixels do not."""
    _colmap_text_scene(tmp_path)
    good = tmp_path / "images" / "img_02.png"
    noise = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "images" / "full.jpg", quality=95)
    data = (tmp_path / "images" / "full.jpg").read_bytes()
    good.unlink()
    # Keep the PNG name the model refers to but give it a cut JPEG body: PIL sniffs the format.
    good.write_bytes(data[: len(data) // 2])
    (tmp_path / "images" / "full.jpg").unlink()
    with pytest.raises(SceneError, match=r"img_02.png: cannot decode image"):
        prepare_scene(tmp_path, kind="unbounded")
    shutil.rmtree(tmp_path / "images")
    with pytest.raises(SceneError, match=r"image folder"):
        prepare_scene(tmp_path, kind="unbounded")
    with pytest.raises(SceneError, match="image file not found"):
        verify_image(tmp_path / "absent.png")
