"""SAM 3 teachers over the official ``sam3`` package (extra ``san[sam3]``).

Without the extra these tests skip with the reason, except under ``CI=true`` where a missing extra
is a failure (the policy of ``tests/conftest.py`` for ``../shared`` data). They use the reduced-size
untrained variant (``sam3_untrained_small``: 224 px input, built in about 3 s) on tiny images.
"""

from __future__ import annotations

import importlib.util
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from san.teachers import Prompts, TeacherError, build_teacher
from san.teachers.base import TeacherInfo


def _require_extra() -> None:
    missing = [m for m in ("sam3", "psutil", "open_clip") if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"the sam3 extra is not installed (missing {', '.join(missing)}; pip install -e '.[sam3]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + "; under CI=true a missing extra is a failure")
        pytest.skip(msg)


@pytest.fixture(scope="module")
def small():
    _require_extra()
    return build_teacher("sam3_untrained_small", device="cpu")


@pytest.fixture(scope="module")
def image():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 12, 16, generator=g)
    return torch.nn.functional.interpolate(x, (72, 96), mode="bilinear", align_corners=False).clamp(0, 1)


@pytest.fixture(scope="module")
def features(small, image):
    return [f[0] for f in small.encode(image)]


def test_small_teacher_is_labelled_untrained_and_has_six_maps(small):
    info = small.info
    assert info.kind == "untrained" and info.untrained and "untrained" in info.name
    assert info.input_size == 224
    assert info.feature_shapes == ((64, 64, 64), (64, 32, 32), (64, 16, 16), (8, 64, 64), (16, 32, 32), (64, 16, 16))
    assert small.supports_text


def test_encode_shapes_and_valid_region(small, image, features):
    assert [tuple(f.shape) for f in features] == [s for s in small.info.feature_shapes]
    assert all(bool(torch.isfinite(f).all()) for f in features)
    # a 72x96 image fills 168x224 of the 224 square: 3/4 of the rows of every map see it
    assert small.valid_hw(image.shape[-2:]) == [(48, 64), (24, 32), (12, 16), (48, 64), (24, 32), (12, 16)]


def test_untrained_weights_are_seeded(small):
    _require_extra()
    again = build_teacher("sam3_untrained_small", device="cpu")
    a, b = small.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "two builds differ: a weight is not drawn from the seed"


def test_decode_clicks_box_and_text(small, features):
    hw = (72, 96)
    click = small.decode(features, Prompts.click(40.5, 30.5), hw)
    assert click.masks.shape == (1, *hw) and click.masks.dtype == torch.bool and click.scores.shape == (1,)
    multi = small.decode(features, Prompts.from_box(10, 10, 60, 50), hw, multimask_output=True)
    assert multi.masks.shape == (3, *hw)
    text = small.decode(features, Prompts.from_text("a yellow bulldozer"), hw)
    assert text.masks.shape == (1, *hw) and 0.0 <= float(text.scores[0]) <= 1.0
    other = small.decode(features, Prompts.from_text("the sky"), hw)
    assert not torch.equal(text.low_res_logits, other.low_res_logits), "the text does not reach the head"
    with pytest.raises(TeacherError, match="text prompt or clicks"):
        small.decode(features, Prompts(torch.tensor([[4.5, 4.5]]), torch.tensor([1]), text="a dog"), hw)


def test_heads_on_cache_round_trip_give_identical_masks(small, image, features, tmp_path):
    """The HDF5 cache keeps every map the heads read: masks from the teacher's own features and
    from the same features read back from the cache are identical, for clicks and for text."""
    from san.features.cache import open_feature_cache, write_feature_cache

    hw = tuple(image.shape[-2:])
    path = tmp_path / "sam3_untrained_small.h5"
    rgb = (image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    write_feature_cache(
        path,
        [rgb],
        np.eye(4)[None],
        np.eye(3)[None],
        [f[None].numpy() for f in features],
        [False],
        small.info,
        "0" * 64,
    )
    with open_feature_cache(path, validate=True) as cache:
        assert cache.num_maps == 6
        cached = [torch.from_numpy(f.astype(np.float32)) for f in cache.features(0)]
        meaning = cache.file["features/3"].attrs["backbone_output"]
    assert "conv_s0" in meaning and "point/box head" in meaning
    prompts = [Prompts.click(40.5, 30.5), Prompts.click(10.5, 60.5, positive=True), Prompts.from_text("a tree")]
    for p in prompts:
        own = small.decode(features, p, hw)
        back = small.decode(cached, p, hw)
        assert torch.equal(own.masks, back.masks), f"masks differ for {p}"


def test_text_prompt_to_a_teacher_without_text_head():
    from san.teachers.toy import ToyMultiScaleTeacher

    toy = ToyMultiScaleTeacher()
    feats = [f[0] for f in toy.encode(torch.rand(1, 3, 32, 32))]
    with pytest.raises(TeacherError, match="has no text head"):
        toy.decode(feats, Prompts.from_text("a dog"), (32, 32))


def test_prompts_text_validation():
    assert Prompts.from_text("  a dog ").text == "a dog"
    with pytest.raises(TeacherError, match="non-empty"):
        Prompts(text="  ")
    with pytest.raises(TeacherError, match="at least one point, a box or a text"):
        Prompts()


def test_sam3_needs_a_checkpoint_and_names_bad_files(tmp_path):
    _require_extra()
    from san.teachers.sam3 import read_sam3_checkpoint

    with pytest.raises(TeacherError, match="needs a checkpoint"):
        build_teacher("sam3")
    missing = tmp_path / "sam3.pt"
    with pytest.raises(TeacherError, match=f"{missing}: SAM 3 checkpoint not found"):
        build_teacher("sam3", checkpoint=missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(TeacherError, match=f"{garbage}: cannot read SAM 3 checkpoint"):
        read_sam3_checkpoint(garbage)
    sam1 = tmp_path / "sam_like.pt"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(2, 3, 16, 16)}, sam1)
    with pytest.raises(TeacherError, match="not a SAM 3 checkpoint"):
        read_sam3_checkpoint(sam1)
    small_patch = tmp_path / "small.pt"
    torch.save(
        {"detector.backbone.vision_backbone.trunk.patch_embed.proj.weight": torch.zeros(96, 3, 14, 14), "tracker.x": 1},
        small_patch,
    )
    with pytest.raises(TeacherError, match="wrong architecture"):
        read_sam3_checkpoint(small_patch)
    with pytest.raises(TeacherError, match="untrained and takes no checkpoint"):
        build_teacher("sam3_untrained_small", checkpoint=small_patch)


def test_checkpoint_loading_is_strict(small, tmp_path):
    """The released layout (``detector.*``, ``tracker.*``) round-trips; a missing weight is an error
    naming the file (the package's own loader only prints it)."""
    from san.teachers.sam3 import build_sam3_model, load_sam3_checkpoint

    state = {}
    for k, v in small.model.state_dict().items():
        prefix = "inst_interactive_predictor.model."
        state[("tracker." + k.removeprefix(prefix)) if k.startswith(prefix) else "detector." + k] = v
    fresh = build_sam3_model("small", seed=1)
    load_sam3_checkpoint(fresh, state, "released.pt")
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in small.model.state_dict().items())
    del state[next(k for k in state if k.startswith("tracker."))]
    with pytest.raises(TeacherError, match=r"released.pt: does not match the SAM 3 image model: 1 weight\(s\) missing"):
        load_sam3_checkpoint(fresh, state, "released.pt")


def test_preflight_checks_the_sam3_checkpoint(tmp_path):
    from san.teachers import TeacherConfig
    from san.teachers.preflight import check_teacher

    _require_extra()
    with pytest.raises(TeacherError, match="needs a checkpoint"):
        check_teacher(TeacherConfig(name="sam3"))
    bad = tmp_path / "sam3.pt"
    bad.write_bytes(b"\x00" * 64)
    check_teacher(TeacherConfig(name="sam3", checkpoint=str(bad)), open_checkpoint=False)  # cheap: exists
    with pytest.raises(TeacherError, match=f"{bad}: cannot read SAM 3 checkpoint"):
        check_teacher(TeacherConfig(name="sam3", checkpoint=str(bad)))
    with pytest.raises(TeacherError, match="untrained and takes no checkpoint"):
        check_teacher(TeacherConfig(name="sam3_untrained_small", checkpoint=str(bad)))


def test_missing_extra_gives_a_clear_error(monkeypatch):
    import builtins

    from san.teachers import sam3

    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "sam3" or name.startswith("sam3."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.setattr(sam3.importlib, "import_module", lambda n: fake(n))
    with pytest.raises(TeacherError, match=r"need the module 'sam3'.*pip install 'san\[sam3\]'"):
        build_teacher("sam3_untrained_small")


def test_info_kind_labels():
    info = TeacherInfo("sam3", 1008, ((256, 72, 72),), "/x/sam3.pt", "ab" * 32, kind="sam")
    assert info.label == "SAM weights" and not info.untrained


def test_text_evaluation_protocol(small, image):
    """Protocol step 7: texts decoded from teacher and imitated features; the teacher's own features
    as the 'imitation' agree perfectly, perturbed ones less."""
    from san.evaluation.protocol import evaluate_views, summarize, text_rows

    rgb = image[0].permute(1, 2, 0)
    own = [f[0] for f in small.encode(image)]
    g = torch.Generator().manual_seed(0)
    noisy = [f + 2.0 * f.std() * torch.randn(f.shape, generator=g) for f in own]
    texts = ("a yellow bulldozer", "the ground")
    views = [SimpleNamespace(index=0, name="0")]
    same = summarize(evaluate_views(small, lambda v: rgb, lambda v: own, views, grid=2, texts=texts))
    assert same["text_iou"] == 1.0 and same["mask_iou"] == 1.0 and same["text_prompts"] == list(texts)
    results = evaluate_views(small, lambda v: rgb, lambda v: noisy, views, grid=2, texts=texts)
    rows = text_rows(results)
    assert [r["text"] for r in rows] == list(texts) and all(0.0 <= r["iou"] <= 1.0 for r in rows)
    assert summarize(results)["text_iou"] < 1.0
