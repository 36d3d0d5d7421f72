"""Batch segmentation (rule segment_prompts / `san segment`): prompts TSV, outputs, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from PIL import Image

from san.cameras import Camera
from san.cli import main as cli_main
from san.data.scene import Frame, Normalization, Scene, save_scene
from san.interaction.prompts import PromptError, check_prompts, mesh_views, read_prompts
from san.interaction.session import SegmentationSession
from san.layout import MissingStageError, require_stages
from san.pipeline.segment import segment_scene


def make_scene(make_camera, n_views: int = 4) -> Scene:
    frames = []
    for k in range(n_views):
        a = 2 * np.pi * k / n_views
        c2w, K, W, H = make_camera((1.5 * np.cos(a), 1.5 * np.sin(a), 4.0), up=(0.0, 1.0, 0.0))
        frames.append(Frame(f"view_{k}.png", Camera(c2w, K, W, H), split="test" if k == n_views - 1 else "train"))
    transform = np.eye(4)
    transform[:3, :3] *= 0.5
    return Scene(tuple(frames), "unbounded", 0.1, 10.0, Normalization(transform, 0.5))


def write_tsv(path, rows, header="scene\tview\tx\ty\tlabel"):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def segment_cli(scene_dir, out, *args, options=()):
    """``san [options] segment --scene-dir SCENE_DIR ARGS --out OUT``: the exit code."""
    return cli_main([*options, "segment", "--scene-dir", str(scene_dir), *args, "--out", str(out)])


@pytest.fixture
def ground_session(make_camera, make_square, mesh_renderer, features_fn):
    """``ground_session(decoder) -> (scene, ground, session)``: :func:`make_scene`'s four views of a
    subdivided 4x4 ground square at z = 0, drawn by the mesh renderer and decoded by ``decoder``."""

    def build(decoder):
        scene = make_scene(make_camera)
        ground = make_square(4.0, 0.0, subdivisions=4)
        return scene, ground, SegmentationSession(mesh_renderer(ground), features_fn, decoder, scene.frames)

    return build


def test_read_prompts_and_its_errors(tmp_path):
    good = write_tsv(tmp_path / "p.tsv", ["# a comment", "demo/a\t0\t10.5\t12.5\t1", "", "demo/a\t0\t30\t20\t0"])
    df = read_prompts(good)
    assert df["label"].tolist() == [1, 0] and df["view"].tolist() == [0, 0]
    assert df["line"].tolist() == [3, 5]
    bad = write_tsv(tmp_path / "b.tsv", ["demo/a\tzero\t1\t1\t1", "demo/a\t0\tnan\t1\t2"])
    with pytest.raises(PromptError) as e:
        read_prompts(bad)
    msg = str(e.value)
    assert "line 2: view 'zero' is not an integer" in msg
    assert "line 3: x 'nan' is not a finite number" in msg
    assert "line 3: label '2' must be 1 (positive) or 0 (negative)" in msg
    with pytest.raises(PromptError, match=r"missing column\(s\) \['label'\]"):
        read_prompts(write_tsv(tmp_path / "c.tsv", ["a\t0\t1\t1"], header="scene\tview\tx\ty"))
    with pytest.raises(PromptError, match="not found"):
        read_prompts(tmp_path / "absent.tsv")


def test_check_prompts_names_unknown_views_and_outside_clicks(tmp_path, make_camera):
    scene = make_scene(make_camera)
    tsv = write_tsv(tmp_path / "p.tsv", ["demo/a\t7\t1\t1\t1", "demo/a\t1\t64\t1\t1", "demo/a\t1\t3\t3\t1"])
    with pytest.raises(PromptError) as e:
        check_prompts(read_prompts(tsv), "demo/a", scene)
    msg = str(e.value)
    assert "line 2 (demo/a, view 7): unknown view 7; demo/a has views 0..3" in msg
    assert "line 3 (demo/a, view 1): click (64, 1) is outside the 64x48 image" in msg
    assert "line 4" not in msg


def test_require_stages_names_file_and_rule(tmp_path):
    (tmp_path / "poses").mkdir()
    (tmp_path / "poses" / "cameras.json").write_text("{}")
    with pytest.raises(MissingStageError) as e:
        require_stages(tmp_path, ("cameras", "nerf", "field", "mesh"), variant="no_aug")
    msg = str(e.value)
    assert "nerf/model.pt (made by rule train_nerf)" in msg
    assert "imitation/no_aug/field.pt (made by rule train_imitation)" in msg
    assert "mesh/mesh_normalized.ply (made by rule extract_mesh)" in msg
    assert "cameras.json" not in msg


def test_mesh_views_spread_over_training_views(make_camera):
    scene = make_scene(make_camera, n_views=9)  # view 8 is the test view
    assert mesh_views(scene, 8, 3) == [8, 0, 7]
    assert mesh_views(scene, 2, 3)[0] == 2 and len(mesh_views(scene, 2, 3)) == 3
    assert mesh_views(scene, 0, 1) == [0]


def test_segment_scene_writes_masks_overlays_and_mesh(tmp_path, ground_session, disk_decoder):
    scene, ground, session = ground_session(disk_decoder)
    tsv = write_tsv(
        tmp_path / "p.tsv",
        [
            "demo/a\t0\t32.5\t24.5\t1",
            "demo/a\t0\t40.5\t24.5\t0",
            "demo/a\t2\t20.5\t20.5\t1",
            "demo/b\t0\t1\t1\t1",
        ],
    )
    prompts = read_prompts(tsv)
    rows = prompts[prompts["scene"] == "demo/a"]
    out = tmp_path / "out"
    entries = segment_scene(session, scene, rows, out, "demo/a", mesh=ground, views_for_mesh=3)
    assert [e["view"] for e in entries] == [0, 2]
    mask = np.asarray(Image.open(out / "view_000_mask.png"))
    assert mask.shape == (48, 64) and set(np.unique(mask)) <= {0, 255} and mask[24, 32] == 255 and mask[24, 40] == 0
    overlay = np.asarray(Image.open(out / "view_000_overlay.png"))
    assert overlay.shape == (48, 64, 3)
    record = json.loads((out / "view_000.json").read_text())
    assert record["clicks"][1] == {"x": 40.5, "y": 24.5, "label": 0, "line": 3}
    m = record["mesh"]
    assert m["segment_faces"] > 0 and m["segment_faces"] + m["rest_faces"] == len(ground.faces)
    assert m["frame"] == "input" and len(m["views"]) >= 2
    seg = trimesh.load(out / "view_000_mesh" / "segment.glb", force="mesh", process=False)
    assert len(seg.faces) == m["segment_faces"]
    # Input frame = normalised / 0.5: the segment lies around the click, twice as far from the origin.
    session.clear()
    session.set_view(0)
    click = session.add_click(32.5, 24.5).point
    assert np.linalg.norm(seg.vertices.mean(0)[:2] - 2 * click[:2]) < 0.2
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["objects"]) == 2


def test_cli_errors(tmp_path, make_camera, capsys):
    scene_dir = tmp_path / "results" / "demo" / "a"
    out = tmp_path / "out"
    code = segment_cli(scene_dir, out, "--view", "0", "--click", "1,1")
    err = capsys.readouterr().err
    assert (
        code == 1
        and "poses/cameras.json (made by rule prepare_poses)" in err
        and "nerf/model.pt (made by rule train_nerf)" in err
    )
    save_scene(make_scene(make_camera), scene_dir / "poses" / "cameras.json")
    (scene_dir / "nerf").mkdir(parents=True)
    (scene_dir / "nerf" / "model.pt").write_bytes(b"")
    (scene_dir / "imitation" / "full").mkdir(parents=True)
    (scene_dir / "imitation" / "full" / "field.pt").write_bytes(b"")
    code = segment_cli(scene_dir, out, "--view", "0", "--click", "100,1", "--click", "2,2,0")
    err = capsys.readouterr().err
    assert code == 1 and "click (100, 1) is outside the 64x48 image" in err
    code = segment_cli(scene_dir, out, "--view", "9", "--click", "1,1")
    assert code == 1 and "unknown view 9; demo/a has views 0..3" in capsys.readouterr().err
    code = segment_cli(scene_dir, out, "--view", "0", "--click", "1,1", "--export-mesh")
    assert code == 1 and "mesh/mesh_normalized.ply (made by rule extract_mesh)" in capsys.readouterr().err
    code = segment_cli(scene_dir, out)
    assert code == 1 and "give --view and at least one --click" in capsys.readouterr().err
    code = segment_cli(scene_dir, out, "--view", "0", "--click", "1")
    assert code == 1 and "expected X,Y or X,Y,LABEL" in capsys.readouterr().err


def test_segment_scene_labels_an_untrained_teacher(tmp_path, ground_session, disk_decoder):
    from types import SimpleNamespace

    scene, ground, session = ground_session(disk_decoder)
    rows = read_prompts(write_tsv(tmp_path / "p.tsv", ["demo/a\t0\t32.5\t24.5\t1"]))
    info = SimpleNamespace(name="sam_untrained_tiny", untrained=True)
    out = tmp_path / "out"
    segment_scene(session, scene, rows, out, "demo/a", mesh=ground, views_for_mesh=2, teacher_info=info)
    for record in (json.loads((out / "view_000.json").read_text()), json.loads((out / "summary.json").read_text())):
        assert record["teacher"] == "sam_untrained_tiny" and record["untrained"] is True


def test_segment_prompts_on_the_rule_files_of_a_trained_scene(scene_dir, tmp_path, caplog):
    """Rule segment_prompts end to end on a tiny trained scene (a real NeRF and field, the toy
    teacher the field records): inputs and output passed by name, outputs beside summary.json."""
    from san.pipeline.segment import segment_prompts
    from san.teachers import ToyMultiScaleTeacher

    info = ToyMultiScaleTeacher().info
    tsv = write_tsv(tmp_path / "p.tsv", ["demo/a\t1\t20.5\t15.5\t1", "demo/b\t0\t1\t1\t1"])
    out = tmp_path / "segmentation" / "full"
    caplog.set_level("INFO", logger="san")
    entries = segment_prompts(
        tsv,
        "demo/a",
        cameras=scene_dir / "poses" / "cameras.json",
        model=scene_dir / "nerf" / "model.pt",
        field=scene_dir / "imitation" / "full" / "field.pt",
        summary=out / "summary.json",
        export_mesh=False,
        device="cpu",
    )
    assert [e["view"] for e in entries] == [1] and entries[0]["teacher"] == info.name
    assert (out / "view_001_mask.png").is_file() and (out / "view_001_overlay.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["untrained"] is True and len(summary["objects"]) == 1
    # Issue 17, item 4: a step line for the loading, the teacher (labelled untrained), and each object.
    steps = [r.getMessage() for r in caplog.records if r.getMessage().startswith("segment: demo/a")]
    assert steps[0].startswith("segment: demo/a: loading the NeRF") and "1 object(s)" in steps[0]
    assert steps[1].startswith("segment: demo/a: loaded in") and f"teacher {info.name}, untrained" in steps[1]
    assert "UNTRAINED" in steps[1]
    assert steps[2] == "segment: demo/a view_001: 1 click(s), rendering and decoding"


def test_cli_bad_model_file_and_unknown_teacher_are_one_line_errors(tmp_path, capsys):
    """Issue 13, kind 6: the project's own errors end as ``san segment: error: ...`` (exit 1), no traceback."""
    import torch

    from tests.test_trained_scene import write_scene

    scene_dir = tmp_path / "results" / "demo" / "a"
    tiny = {"name": "sam_untrained_tiny", "untrained": True, "feature_shapes": [[256, 64, 64]]}
    write_scene(scene_dir, tiny["feature_shapes"], tiny)  # a readable field recording its teacher
    torch.save({"format": "x" * 1000}, scene_dir / "nerf" / "model.pt")
    data = (scene_dir / "nerf" / "model.pt").read_bytes()
    (scene_dir / "nerf" / "model.pt").write_bytes(data[: len(data) // 2])  # truncated copy
    out = tmp_path / "out"
    code = segment_cli(scene_dir, out, "--view", "0", "--click", "1,1", "--device", "cpu")
    err = capsys.readouterr().err
    # Issue 17, item 4: the command says what it is doing before the (one-line) error.
    assert "segment: demo/a: loading the NeRF, the imitation field and the teacher's decoder (device cpu" in err
    assert code == 1 and err.count("san segment: error: ") == 1 and "Traceback" not in err
    error = err[err.index("san segment: error: ") :]
    assert error.startswith(f"san segment: error: {scene_dir / 'nerf' / 'model.pt'}: cannot read NeRF model")
    # -q: warnings and errors only
    assert segment_cli(scene_dir, out, "--view", "0", "--click", "1,1", options=["-q"]) == 1
    assert capsys.readouterr().err.startswith("san segment: error: ")
    code = segment_cli(scene_dir, out, "--view", "0", "--click", "1,1", "--teacher", "sam_vit_q")
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("san segment: error: unknown teacher 'sam_vit_q'") and "Traceback" not in err


def _empty_decoder(features, prompts, hw):
    import torch

    return torch.zeros((1, *hw), dtype=torch.bool), torch.tensor([0.9])


def test_b2_11_empty_and_total_selections_are_recorded_not_crashed(tmp_path):
    """Issue 13, kind 8 (case B2-11): no crash, no empty or half-written mesh files, the JSON says why."""
    from san.interaction.mesh_segmentation import export_segmentation

    mesh = trimesh.creation.icosphere(subdivisions=2)
    out = tmp_path / "object"
    full = export_segmentation(mesh, np.ones(len(mesh.faces), bool), out)
    assert full.empty == ["rest"] and full.rest_ply is None and full.segment_faces == len(mesh.faces)
    assert sorted(p.name for p in out.iterdir()) == ["segment.glb", "segment.json", "segment.ply"]
    # The same folder again with nothing selected: the earlier segment files must not look like this export's.
    none = export_segmentation(mesh, np.zeros(len(mesh.faces), bool), out)
    assert none.empty == ["segment"] and none.segment_faces == 0 and none.segment_ply is None
    assert sorted(p.name for p in out.iterdir()) == ["segment.json", "segment_rest.glb", "segment_rest.ply"]
    record = json.loads((out / "segment.json").read_text())
    assert (
        record["empty"] == ["segment"] and "nothing selected" in record["empty_note"] and record["segment_faces"] == 0
    )
    assert record["files"] == ["segment_rest.ply", "segment_rest.glb"]
    assert len(trimesh.load(out / "segment_rest.ply", force="mesh").faces) == len(mesh.faces)


def test_b2_11_click_on_the_sky_end_to_end(tmp_path, ground_session):
    scene, ground, session = ground_session(_empty_decoder)
    rows = read_prompts(write_tsv(tmp_path / "p.tsv", ["demo/a\t0\t32.5\t24.5\t1"]))
    out = tmp_path / "out"
    entries = segment_scene(session, scene, rows, out, "demo/a", mesh=ground, views_for_mesh=2)
    assert entries[0]["mask_pixels"] == 0
    m = entries[0]["mesh"]
    assert m["segment_faces"] == 0 and m["empty"] == ["segment"] and m["rest_faces"] == len(ground.faces)
    assert all((out / f).is_file() for f in m["files"]) and not any("segment.ply" in f for f in m["files"])
    assert json.loads((out / "summary.json").read_text())["objects"][0]["mesh"]["empty"] == ["segment"]


def test_segment_scene_writes_textured_objects_cut_from_the_scene_texture(tmp_path, ground_session, disk_decoder):
    from san.mesh.export import write_textured_scene
    from san.mesh.texture import bake_texture

    scene, ground, session = ground_session(disk_decoder)
    textured = bake_texture(ground, lambda p, d: (0.5 + 0.1 * p).clamp(0, 1), None, size=64, dilation=2, view="normal")
    mesh_dir = tmp_path / "mesh"
    write_textured_scene(textured, scene.normalization, mesh_dir)
    rows = read_prompts(write_tsv(tmp_path / "p.tsv", ["demo/a\t0\t32.5\t24.5\t1"]))
    out = tmp_path / "out"
    entries = segment_scene(session, scene, rows, out, "demo/a", mesh=ground, views_for_mesh=3, mesh_dir=mesh_dir)
    files = entries[0]["mesh"]["files"]
    assert {f"view_000_mesh/segment_textured.{e}" for e in ("glb", "obj", "mtl", "png")} <= set(files)
    glb = trimesh.load(out / "view_000_mesh" / "segment_textured.glb", force="mesh")
    assert glb.visual.kind == "texture" and glb.visual.material.baseColorTexture is not None
    assert len(glb.faces) == entries[0]["mesh"]["segment_faces"]
    # the object's texture is cut from the scene's: smaller than the scene's atlas
    crop = Image.open(out / "view_000_mesh" / "segment_textured.png")
    assert crop.size[0] * crop.size[1] < textured.image.shape[0] * textured.image.shape[1]
