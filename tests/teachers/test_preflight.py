"""``san.teachers.preflight.check_teacher``: a bad teacher checkpoint is found before any training
(issue 13, kind 3; case R2-20)."""

from __future__ import annotations

import shutil

import pytest
import torch

from san.teachers import TeacherConfig
from san.teachers.base import TeacherError
from san.teachers.preflight import check_teacher


def _fake_vit_b(path):
    """What R2-20's builder writes: a small state dict shaped like SAM ViT-B."""
    state = {"image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 16, 16)}
    state.update({f"image_encoder.blocks.{i}.norm1.weight": torch.ones(768) for i in range(12)})
    torch.save(state, path)
    return path


def test_r2_20_case_files_are_refused(build_case):
    case = build_case("R2-20")
    expectations = {
        "sam_vit_b_fake.pth": r"wrong architecture: the checkpoint holds vit_b .* the teacher needs vit_h",
        "not_a_checkpoint.pth": r"cannot read SAM checkpoint, the file is corrupt or truncated",
        "truncated.pth": r"cannot read SAM checkpoint, the file is corrupt or truncated",
    }
    for name, pattern in expectations.items():
        with pytest.raises(TeacherError, match=pattern) as info:
            check_teacher(TeacherConfig("sam_vit_h", str(case / name)))
        assert str(case / name) in str(info.value)


def test_cheap_checks_need_no_file_opening(tmp_path):
    with pytest.raises(TeacherError, match=r"unknown teacher 'sam_vit_q' .*available: .*sam_vit_h"):
        check_teacher(TeacherConfig("sam_vit_q"), open_checkpoint=False)
    with pytest.raises(TeacherError, match="needs a checkpoint"):
        check_teacher(TeacherConfig("sam_vit_h"), open_checkpoint=False)
    with pytest.raises(TeacherError, match="untrained and takes no checkpoint"):
        check_teacher(TeacherConfig("sam_untrained_tiny", str(tmp_path / "x.pth")), open_checkpoint=False)
    with pytest.raises(TeacherError, match=r"absent.pth: teacher checkpoint not found"):
        check_teacher(TeacherConfig("sam_vit_b", str(tmp_path / "absent.pth")), open_checkpoint=False)
    (tmp_path / "garbage.pth").write_text("not opened without open_checkpoint")
    check_teacher(TeacherConfig("sam_vit_b", str(tmp_path / "garbage.pth")), open_checkpoint=False)
    check_teacher(TeacherConfig("sam_untrained_tiny"))


def test_right_architecture_passes_and_an_official_name_must_match_its_digest(tmp_path):
    good = _fake_vit_b(tmp_path / "my_vit_b.pth")
    check_teacher(TeacherConfig("sam_vit_b", str(good)))  # right architecture, no official name: fine
    renamed = tmp_path / "sam_vit_b_01ec64.pth"  # the released file's name, other bytes
    shutil.copy(good, renamed)
    with pytest.raises(
        TeacherError, match=r"sam_vit_b_01ec64.pth: its name says digest 01ec64\.\.\. .*incomplete or altered download"
    ):
        check_teacher(TeacherConfig("sam_vit_b", str(renamed)))
    import hashlib

    prefix = hashlib.sha256(good.read_bytes()).hexdigest()[:6]
    matching = tmp_path / f"sam_vit_b_{prefix}.pth"
    shutil.copy(good, matching)
    check_teacher(TeacherConfig("sam_vit_b", str(matching)))


def test_a_checked_checkpoint_is_remembered_until_it_changes(tmp_path, monkeypatch):
    import san.teachers.sam as sam

    good = _fake_vit_b(tmp_path / "my_vit_b.pth")
    memo = tmp_path / "memo"
    reads = []
    real = sam.read_sam_checkpoint
    monkeypatch.setattr(sam, "read_sam_checkpoint", lambda p, a: reads.append(p) or real(p, a))
    check_teacher(TeacherConfig("sam_vit_b", str(good)), memo_dir=memo)
    check_teacher(TeacherConfig("sam_vit_b", str(good)), memo_dir=memo)
    assert len(reads) == 1 and len(list(memo.iterdir())) == 1
    good.write_text("replaced by a broken download")  # new size and mtime: checked again
    with pytest.raises(TeacherError, match="cannot read SAM checkpoint"):
        check_teacher(TeacherConfig("sam_vit_b", str(good)), memo_dir=memo)


def test_text_prompts_need_a_teacher_with_a_text_head():
    """Text prompts from the config or from the scene sheet are refused at DAG build, naming the
    teacher (and the sheet and every scene that gives some); a SAM 3 teacher takes both."""
    from san.teachers.preflight import check_text_prompts

    tiny = TeacherConfig("sam_untrained_tiny")
    check_text_prompts(tiny)  # no prompts anywhere: nothing to check
    check_text_prompts(tiny, (), {"demo/demo": (), "llff/fern": ()}, "s.tsv")
    with pytest.raises(TeacherError, match=r"evaluation.text_prompts \['a dog'\]: teacher 'sam_untrained_tiny' has no"):
        check_text_prompts(tiny, ("a dog",))
    with pytest.raises(TeacherError) as info:
        check_text_prompts(
            tiny, (), {"demo/demo": ("a red box", "the ground"), "llff/fern": (), "x/y": ("a",)}, "s.tsv"
        )
    msg = str(info.value)
    assert msg.startswith(
        "s.tsv: column text_prompts gives text prompts (scene 'demo/demo': ['a red box', 'the ground']"
    )
    assert "scene 'x/y': ['a']" in msg and "llff/fern" not in msg and "teacher 'sam_untrained_tiny'" in msg
    sam3 = TeacherConfig("sam3_untrained_small")  # the registry knows: nothing is built, no sam3 package needed
    check_text_prompts(sam3, ("a dog",), {"demo/demo": ("a red box",)}, "s.tsv")
    with pytest.raises(TeacherError, match="unknown teacher 'nope'"):
        check_text_prompts(TeacherConfig("nope"), ("a dog",))
