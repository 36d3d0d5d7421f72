"""The one trained-scene loader (san.trained_scene): the teacher defaults to the field's recorded one,
and a field that records another teacher is refused by the loader, `san segment` and `san view`."""

from __future__ import annotations

import numpy as np
import pytest

import san.interaction.viewer
import san.models.nerf
from san.cameras import Camera
from san.cli import main as cli_main
from san.data.scene import Frame, Normalization, Scene, save_scene
from san.fields.config import SemanticFieldConfig
from san.imitation.config import FeatureHeadConfig
from san.imitation.model import ImitationModel, save_imitation
from san.teachers import TeacherInfo, ToyMultiScaleTeacher
from san.teachers.toy import TOY_NAME
from san.trained_scene import TeacherMismatchError, check_teacher, load_trained_scene, recorded_teacher

SAM_H = {"name": "sam_vit_h", "untrained": False, "checkpoint_sha256": "ab" * 32, "feature_shapes": [[256, 64, 64]]}


class FakeNeRF:
    def eval(self):
        return self


def write_scene(root, feature_shapes, teacher_info) -> None:
    """A scene folder whose field records ``teacher_info``; nerf/model.pt and the mesh are empty
    files (the teacher check comes before either is read)."""
    K = np.array([[40.0, 0, 20], [0, 40.0, 15], [0, 0, 1]])
    save_scene(
        Scene((Frame("a.png", Camera(np.eye(4), K, 40, 30)),), "unbounded", 0.1, 10.0, Normalization.identity()),
        root / "poses" / "cameras.json",
    )
    field = ImitationModel(
        SemanticFieldConfig(num_levels=2, features_per_level=2, log2_hashmap_size=8, max_resolution=16),
        FeatureHeadConfig(width=8, layers=1),
        feature_shapes,
        1024,
        backend="torch",
    )
    save_imitation(
        field, root / "imitation" / "full" / "field.pt", {"teacher": teacher_info["name"], "teacher_info": teacher_info}
    )
    for rel in ("nerf/model.pt", "mesh/mesh_normalized.ply"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")


@pytest.fixture
def sam_h_scene(tmp_path):
    root = tmp_path / "results" / "demo" / "toy"
    write_scene(root, SAM_H["feature_shapes"], SAM_H)
    return root


def test_check_teacher_names_both_and_compares_name_digest_and_shapes():
    toy = ToyMultiScaleTeacher().info
    check_teacher({"name": TOY_NAME}, toy, "f.pt", feature_shapes=toy.feature_shapes)
    with pytest.raises(
        TeacherMismatchError,
        match=r"f.pt: the field imitates teacher 'sam_vit_h' .*but the given teacher is 'toy_multiscale_untrained'",
    ):
        check_teacher(SAM_H, toy, "f.pt")
    other_digest = TeacherInfo("sam_vit_h", 1024, ((256, 64, 64),), checkpoint_sha256="cd" * 32)
    with pytest.raises(TeacherMismatchError, match="checkpoint sha256 abababababab.*checkpoint sha256 cdcdcdcdcdcd"):
        check_teacher(SAM_H, other_digest, "f.pt")
    with pytest.raises(
        TeacherMismatchError,
        match=r"has feature maps \[\[256, 64, 64\]\], but teacher 'toy_multiscale_untrained' decodes",
    ):
        check_teacher({"name": TOY_NAME}, toy, "f.pt", feature_shapes=((256, 64, 64),))


def test_recorded_teacher_reads_new_and_old_metadata():
    assert recorded_teacher({"teacher": "x", "teacher_info": SAM_H})["checkpoint_sha256"] == "ab" * 32
    assert recorded_teacher({"teacher": "x"}) == {"name": "x"}
    assert recorded_teacher({}) is None


def test_loader_builds_the_recorded_teacher_by_default(tmp_path, monkeypatch):
    info = ToyMultiScaleTeacher().info
    root = tmp_path / "scene"
    write_scene(
        root,
        info.feature_shapes,
        {
            "name": info.name,
            "untrained": True,
            "checkpoint": None,
            "checkpoint_sha256": None,
            "feature_shapes": [list(s) for s in info.feature_shapes],
        },
    )
    monkeypatch.setattr(san.models.nerf, "load_nerf", lambda path, device: FakeNeRF())
    trained = load_trained_scene(root, device="cpu")
    assert trained.teacher.info.name == TOY_NAME and trained.field.metadata["teacher"] == TOY_NAME
    assert set(trained.paths) == {"cameras", "nerf", "field"}


def test_loader_refuses_a_field_without_a_recorded_teacher(tmp_path):
    root = tmp_path / "scene"
    write_scene(root, ((256, 64, 64),), {"name": ""})
    with pytest.raises(TeacherMismatchError, match="records no teacher, and none was given"):
        load_trained_scene(root, device="cpu")


@pytest.mark.parametrize("command", ["segment", "view"])
def test_both_clis_refuse_a_field_of_another_teacher(sam_h_scene, tmp_path, capsys, monkeypatch, command):
    def no_server():  # `san view` must fail while loading, before any server starts
        raise AssertionError("viser must not be started")

    monkeypatch.setattr(san.interaction.viewer, "_import_viser", lambda: type("viser", (), {"ViserServer": no_server}))
    if command == "segment":
        args = [
            "segment",
            "--scene-dir",
            str(sam_h_scene),
            "--view",
            "0",
            "--click",
            "20.5,15.5",
            "--out",
            str(tmp_path / "out"),
        ]
    else:
        args = ["view", str(sam_h_scene)]
    # Another teacher named on the command line: refused, naming both.
    assert cli_main([*args, "--teacher", "sam_untrained_tiny"]) == 1
    err = capsys.readouterr().err
    assert "field.pt: the field imitates teacher 'sam_vit_h' (checkpoint sha256 abababababab" in err
    assert "but the given teacher is 'sam_untrained_tiny'" in err
    # No teacher given: the field's own is wanted, but its checkpoint file is not recorded.
    assert cli_main(args) == 1
    err = capsys.readouterr().err
    assert (
        "the field imitates teacher 'sam_vit_h'" in err
        and "checkpoint file is not recorded, and no teacher was given" in err
    )
    assert not (tmp_path / "out" / "summary.json").exists()


def test_case_r2_36_a_relabelled_field_is_refused_not_decoded_with_the_default(tmp_path, capsys):
    """Issue 13, kind 5 (case R2-36): the case's own script relabels a field trained with the untrained
    tiny SAM as real ``sam_vit_h``; ``san segment`` without ``--teacher`` used to decode it with the
    default tiny decoder. Now the field's recorded teacher is wanted and, its checkpoint not being
    recorded, the command refuses naming it; an explicit other teacher is refused too."""
    import subprocess
    import sys

    from tests.conftest import SHARED_CASES, _shared

    script = _shared("R2-36/relabel_field.py", SHARED_CASES)
    root = tmp_path / "results" / "demo" / "toy"
    tiny = {
        "name": "sam_untrained_tiny",
        "untrained": True,
        "checkpoint_sha256": None,
        "feature_shapes": [[256, 64, 64]],
    }
    write_scene(root, tiny["feature_shapes"], tiny)
    field = root / "imitation" / "full" / "field.pt"
    subprocess.run([sys.executable, str(script), str(field)], check=True, capture_output=True)
    import torch

    assert recorded_teacher(torch.load(field, weights_only=False)["metadata"])["name"] == "sam_vit_h"
    args = ["segment", "--scene-dir", str(root), "--view", "0", "--click", "20.5,15.5", "--out", str(tmp_path / "o")]
    assert cli_main(args) == 1
    assert "the field imitates teacher 'sam_vit_h'" in capsys.readouterr().err
    assert cli_main([*args, "--teacher", "sam_vit_b_untrained"]) == 1
    assert "but the given teacher is 'sam_vit_b_untrained'" in capsys.readouterr().err
    assert not (tmp_path / "o" / "summary.json").exists()
