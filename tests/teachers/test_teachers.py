"""Teacher API: shapes, valid regions, decoding, registry, determinism (tiny untrained SAM)."""

from __future__ import annotations

import pytest
import torch

from san.config import ConfigError, from_dict
from san.teachers import Prompts, TeacherConfig, TeacherError, available_teachers, build_teacher, teacher_from_config
from san.teachers.base import resized_hw, valid_feature_hw


@pytest.fixture(scope="module")
def tiny():
    return build_teacher("sam_untrained_tiny", device="cpu")


@pytest.fixture(scope="module")
def wide_image():
    """A 300x400 (HxW) image with a bright square, and its tiny-teacher features."""
    image = torch.full((3, 300, 400), 0.2)
    image[:, 100:200, 150:250] = 0.9
    return image


@pytest.fixture(scope="module")
def wide_features(tiny, wide_image):
    return tiny.encode(wide_image[None])


def test_tiny_square_embedding_shape(tiny):
    assert tiny.info.feature_shapes == ((256, 64, 64),)
    assert tiny.info.untrained and "untrained" in tiny.info.name
    assert tiny.info.input_size == 1024
    (features,) = tiny.encode(torch.rand(1, 3, 1024, 1024))
    assert features.shape == (1, 256, 64, 64)
    assert features.dtype == torch.float32 and torch.isfinite(features).all()
    assert tiny.valid_hw((1024, 1024)) == [(64, 64)]


def test_non_square_preprocess_and_valid_region(tiny, wide_image, wide_features):
    batch = tiny.preprocess(wide_image[None])
    assert batch.images.shape == (1, 3, 1024, 1024)
    assert batch.original_hw == (300, 400) and batch.input_hw == (768, 1024)
    assert batch.valid_hw == [(48, 64)]
    assert torch.all(batch.images[..., 768:, :] == 0)
    assert batch.images[..., :768, :].abs().sum() > 0
    assert wide_features[0].shape == (1, 256, 64, 64)
    assert tiny.valid_hw((300, 400)) == [(48, 64)]


@pytest.mark.parametrize(
    "hw, expected",
    [
        ((1024, 1024), (64, 64)),
        ((768, 1024), (48, 64)),
        ((1000, 100), (64, 7)),
        ((512, 512), (64, 64)),
        ((378, 504), (48, 64)),
    ],
)
def test_valid_feature_hw(hw, expected):
    assert valid_feature_hw(hw, 1024, (64, 64)) == expected
    assert max(resized_hw(hw, 1024)) == 1024


def test_decode_click_gives_mask_at_original_size(tiny, wide_features):
    masks, scores, logits = tiny.decode([wide_features[0][0]], Prompts.click(200.5, 150.5), (300, 400))
    assert masks.shape == (1, 300, 400) and masks.dtype == torch.bool
    assert scores.shape == (1,)
    assert logits.shape == (1, 256, 256)


def test_decode_variants(tiny, wide_features):
    full = wide_features[0]
    prompts = Prompts([[200.5, 150.5], [20.5, 20.5]], [1, 0], box=[140, 90, 260, 210])
    multi = tiny.decode(full, prompts, (300, 400), multimask_output=True)
    assert multi.masks.shape == (3, 300, 400) and multi.scores.shape == (3,)
    box_only = tiny.decode(
        [full[0]], Prompts.from_box(140, 90, 260, 210), (300, 400), mask_input=multi.low_res_logits[:1]
    )
    assert box_only.masks.shape == (1, 300, 400)
    # Features of the valid region only are zero-padded to the full map.
    valid = tiny.decode([full[0, :, :48, :]], Prompts.click(10.5, 10.5), (300, 400))
    padded = torch.zeros_like(full[0])
    padded[:, :48] = full[0, :, :48]
    same = tiny.decode([padded], Prompts.click(10.5, 10.5), (300, 400))
    assert torch.equal(valid.masks, same.masks)


def test_decode_rejects_bad_features(tiny, wide_features):
    with pytest.raises(TeacherError, match="feature map 0 must be"):
        tiny.decode([torch.zeros(2, 256, 64, 64)], Prompts.click(1, 1), (300, 400))
    with pytest.raises(TeacherError, match="needs 1 feature map"):
        tiny.decode([], Prompts.click(1, 1), (300, 400))


def test_prompts_validation():
    with pytest.raises(TeacherError, match="labels"):
        Prompts([[1.0, 2.0]], [2])
    with pytest.raises(TeacherError, match="2 points but 1 labels"):
        Prompts([[1.0, 2.0], [3.0, 4.0]], [1])
    with pytest.raises(TeacherError, match="at least one point, a box or a text"):
        Prompts()
    with pytest.raises(TeacherError, match="box"):
        Prompts(box=[1.0, 2.0, 3.0])
    p = Prompts.click(3.5, 4.5, positive=False)
    assert p.points.shape == (1, 2) and p.labels.tolist() == [0]


def test_encode_rejects_bad_images(tiny):
    with pytest.raises(TeacherError, match="divide uint8 by 255"):
        tiny.encode(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(TeacherError, match=r"range \[0, 255\]"):
        tiny.encode(torch.full((1, 3, 8, 8), 255.0).index_fill_(2, torch.tensor([0]), 0.0))
    with pytest.raises(TeacherError, match="Bx3xHxW"):
        tiny.encode(torch.zeros(3, 8, 8))


def test_untrained_weights_are_seeded_and_leave_global_rng_alone(tiny):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    other = build_teacher("sam_untrained_tiny", device="cpu")
    assert torch.equal(torch.rand(3), expected)
    for (name, a), (_, b) in zip(tiny.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), name
    assert tiny.sam.image_encoder.pos_embed.abs().sum() > 0


def test_registry():
    names = available_teachers()
    for name in (
        "sam_vit_h",
        "sam_vit_l",
        "sam_vit_b",
        "sam_vit_h_untrained",
        "sam_untrained_tiny",
        "toy_multiscale_untrained",
    ):
        assert name in names
    with pytest.raises(TeacherError, match="unknown teacher 'sam_vit_x'.*sam_vit_h"):
        build_teacher("sam_vit_x")
    with pytest.raises(TeacherError, match="needs a checkpoint.*sam_vit_b_01ec64.pth"):
        build_teacher("sam_vit_b")
    with pytest.raises(TeacherError, match="untrained and takes no checkpoint"):
        build_teacher("sam_untrained_tiny", checkpoint="x.pth")
    teacher = teacher_from_config(TeacherConfig(name="toy_multiscale_untrained", batch_size=3), device="cpu")
    assert teacher.batch_size == 3 and teacher.info.untrained
    config = from_dict(TeacherConfig, {"name": "sam_vit_h", "checkpoint": "w/sam_vit_h_4b8939.pth"}, "teacher")
    assert config.checkpoint == "w/sam_vit_h_4b8939.pth" and config.batch_size == 1
    with pytest.raises(ConfigError, match="teacher: unknown key.*ckpt"):
        from_dict(TeacherConfig, {"ckpt": "x"}, "teacher")


def test_registry_text_flag_matches_the_teacher_classes():
    """``teacher_supports_text`` (read at DAG build, no torch) agrees with the classes' ``supports_text``."""
    from san.teachers import teacher_supports_text
    from san.teachers.sam3 import Sam3Teacher  # importable without the optional sam3 package

    assert Sam3Teacher.supports_text
    assert {n for n in available_teachers() if teacher_supports_text(n)} == {
        "sam3",
        "sam3_untrained",
        "sam3_untrained_small",
    }
    for name in ("sam_untrained_tiny", "toy_multiscale_untrained"):
        assert not build_teacher(name, device="cpu").supports_text and not teacher_supports_text(name)
    with pytest.raises(TeacherError, match="unknown teacher 'nope'"):
        teacher_supports_text("nope")
