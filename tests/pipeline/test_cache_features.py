"""Rule cache_features end to end with a fake renderer (no NeRF needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from san.cameras import Camera, intrinsics_matrix, look_at
from san.config import ConfigError, from_dict
from san.data.scene import Frame
from san.features.build import cache_features
from san.features.cache import open_feature_cache
from san.features.config import CacheFeaturesConfig
from san.teachers import build_teacher


def render_directions(camera: Camera) -> torch.Tensor:
    """A stand-in NeRF: colour = ray direction mapped to [0, 1]."""
    return camera.rays().directions.reshape(camera.height, camera.width, 3) * 0.5 + 0.5


def train_frames() -> list[Frame]:
    K = intrinsics_matrix(60.0, 60.0, 40.0, 30.0)
    return [
        Frame(f"img{i}.png", Camera(look_at([np.cos(a), np.sin(a), 0.3], [0, 0, 0], [0, 0, 1]), K, 80, 60))
        for i, a in enumerate((0.0, 0.6))
    ]


@pytest.mark.slow
def test_end_to_end_tiny_sam(tmp_path):
    teacher = build_teacher("sam_untrained_tiny", device="cpu")
    config = CacheFeaturesConfig(num_augmented=2, render_size=32, batch_size=2, seed=1)
    out = cache_features(
        render_directions, train_frames(), tmp_path / "sam_untrained_tiny.h5", teacher, config, "f" * 64
    )
    with open_feature_cache(out, validate=True) as cache:
        m = cache.meta
        assert m.teacher == "sam_untrained_tiny" and m.untrained and m.nerf_digest == "f" * 64
        assert m.render_size == 32 and m.settings["num_augmented"] == 2 and m.timing["views"] == 4
        assert len(cache) == 4 and cache.is_augmented.tolist() == [False, False, True, True]
        assert cache.frame_index.tolist() == [0, 1, -1, -1]
        assert cache.image_hw.tolist() == [[24, 32], [24, 32], [32, 32], [32, 32]]
        assert [vh.tolist() for vh in cache.valid_hw] == [[[48, 64], [48, 64], [64, 64], [64, 64]]]
        view = cache.view(0)
        np.testing.assert_allclose(view.K, intrinsics_matrix(24.0, 24.0, 16.0, 12.0), rtol=1e-6)
        expected = (render_directions(Camera(view.c2w, view.K, 32, 24)) * 255).round().to(torch.uint8)
        np.testing.assert_array_equal(view.rgb, expected.numpy())
        assert view.features[0].shape == (256, 64, 64) and view.features[0].dtype == np.float16
        aug = cache.view(3)
        assert (aug.width, aug.height) == (32, 32)
        fov = np.degrees(2 * np.arctan(16 / aug.K[1, 1]))
        assert 50 <= fov <= 70


def test_end_to_end_multiscale_features_match_teacher(tmp_path):
    teacher = build_teacher("toy_multiscale_untrained", device="cpu", batch_size=3)
    config = CacheFeaturesConfig(num_augmented=3, render_size=40, batch_size=2, seed=0, compression="gzip")
    out = cache_features(
        render_directions, train_frames(), tmp_path / "toy_multiscale_untrained.h5", teacher, config, "d"
    )
    with open_feature_cache(out, validate=True) as cache:
        assert len(cache) == 5 and cache.num_maps == 2
        assert cache.file["features/1"].compression == "gzip"
        for i in (0, 4):
            view = cache.view(i)
            maps = teacher.encode(torch.from_numpy(view.rgb).permute(2, 0, 1)[None].float() / 255)
            for stored, fresh in zip(view.features, maps):
                np.testing.assert_allclose(stored.astype(np.float32), fresh[0].numpy(), atol=2e-3, rtol=2e-3)
            assert view.valid_hw == teacher.valid_hw((view.height, view.width))


def test_bad_render_fn_leaves_no_file(tmp_path):
    teacher = build_teacher("toy_multiscale_untrained", device="cpu")
    config = CacheFeaturesConfig(num_augmented=1, render_size=16)
    with pytest.raises(ValueError, match=r"view 0: render_fn returned shape \(16, 16, 3\), expected \(12, 16, 3\)"):
        cache_features(lambda camera: torch.zeros(16, 16, 3), train_frames(), tmp_path / "x.h5", teacher, config, "d")
    assert list(tmp_path.iterdir()) == []


def test_config_validation():
    config = from_dict(CacheFeaturesConfig, {"fov_range": [40, 60], "num_augmented": 5}, "features")
    assert config.fov_range == (40.0, 60.0) and config.num_augmented == 5 and config.render_size == 512
    with pytest.raises(ConfigError, match="features: unknown key.*fov"):
        from_dict(CacheFeaturesConfig, {"fov": [40, 60]}, "features")
    with pytest.raises(ValueError, match="fov_range"):
        CacheFeaturesConfig(fov_range=(70.0, 50.0))
    with pytest.raises(ValueError, match="compression"):
        CacheFeaturesConfig(compression="zstd")
