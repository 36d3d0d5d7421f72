"""SAM checkpoint loading: missing, corrupt, truncated and wrong-architecture files name the path."""

from __future__ import annotations

import pytest
import torch

from san.teachers import TeacherError, build_teacher
from san.teachers.sam import build_sam_tiny, build_untrained_sam, load_sam_checkpoint
from san.utils.io import sha256_file


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny_state.pth"
    torch.save(build_untrained_sam("tiny", seed=7).state_dict(), path)
    return path


def test_load_roundtrip_and_sha256(tiny_checkpoint):
    sam = build_sam_tiny()
    digest = load_sam_checkpoint(sam, tiny_checkpoint, "tiny")
    assert digest == sha256_file(tiny_checkpoint) and len(digest) == 64
    reference = build_untrained_sam("tiny", seed=7).state_dict()
    for name, value in sam.state_dict().items():
        assert torch.equal(value, reference[name]), name


def test_missing_checkpoint(tmp_path):
    path = tmp_path / "nowhere" / "sam_vit_h_4b8939.pth"
    with pytest.raises(TeacherError, match="not found") as err:
        build_teacher("sam_vit_h", checkpoint=path, device="cpu")
    assert str(path) in str(err.value)


def test_corrupt_checkpoint(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"this is not a checkpoint" * 100)
    with pytest.raises(TeacherError, match="corrupt or truncated") as err:
        build_teacher("sam_vit_b", checkpoint=path, device="cpu")
    assert str(path) in str(err.value)


def test_truncated_checkpoint(tmp_path, tiny_checkpoint):
    path = tmp_path / "truncated.pth"
    data = tiny_checkpoint.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TeacherError, match="corrupt or truncated") as err:
        build_teacher("sam_vit_b", checkpoint=path, device="cpu")
    assert str(path) in str(err.value)


def test_wrong_architecture(tiny_checkpoint):
    with pytest.raises(TeacherError, match=r"wrong architecture.*tiny \(embed_dim 128, depth 4\).*vit_b") as err:
        build_teacher("sam_vit_b", checkpoint=tiny_checkpoint, device="cpu")
    assert str(tiny_checkpoint) in str(err.value)


def test_not_a_sam_state_dict(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(TeacherError, match="not a SAM state dict") as err:
        build_teacher("sam_vit_l", checkpoint=path, device="cpu")
    assert str(path) in str(err.value)
