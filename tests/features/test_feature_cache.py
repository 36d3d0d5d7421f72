"""HDF5 feature cache: round trip, atomic writes, truncation and inconsistency detection."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from conftest import INFO

from san.features.cache import FORMAT_VERSION, FeatureCacheError, create_feature_cache, open_feature_cache


def test_round_trip(cache_file, cache_arrays):
    with open_feature_cache(cache_file, validate=True) as cache:
        assert len(cache) == 4 and cache.num_maps == 2
        m = cache.meta
        assert m.teacher == "fake_untrained" and m.untrained and m.checkpoint_sha256 is None
        assert m.format_version == FORMAT_VERSION and m.render_size == 32 and m.input_size == 64
        assert m.feature_shapes == INFO.feature_shapes and m.nerf_digest == "0" * 64 and m.settings == {"seed": 0}
        assert cache.is_augmented.tolist() == [False, False, True, True]
        assert cache.frame_index.tolist() == [0, 1, -1, -1]
        for i in range(4):
            view = cache.view(i)
            np.testing.assert_array_equal(view.rgb, cache_arrays["rgb"][i])
            assert (view.height, view.width) == cache_arrays["rgb"][i].shape[:2]
            np.testing.assert_allclose(view.c2w, cache_arrays["c2w"][i])
            np.testing.assert_allclose(view.K, cache_arrays["K"][i])
            for k, f in enumerate(view.features):
                assert f.dtype == np.float16
                np.testing.assert_allclose(f, cache_arrays["features"][k][i], atol=2e-3, rtol=2e-3)
        # A 24x32 image in a 64 input becomes 48x64: 6x8 of the 8x8 map, 3x4 of the 4x4 map.
        assert cache.view(0).valid_hw == [(6, 8), (3, 4)]
        assert cache.view(3).valid_hw == [(8, 8), (4, 4)]
        assert cache.file["features/0"].chunks == (1, 8, 8, 8)
        assert cache.file["features/0"].compression == "lzf"
        stats = cache.feature_stats()
        assert len(stats) == 2 and 0.5 < stats[0]["std"] < 1.5


def _write(writer, rgb=None, features=None):
    rgb = np.zeros((16, 16, 3), np.uint8) if rgb is None else rgb
    features = [np.zeros(s) for s in INFO.feature_shapes] if features is None else features
    writer.write(0, rgb, np.eye(4), np.eye(3), features, False, 0)


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "c.h5"
    with pytest.raises(RuntimeError, match="boom"):
        with create_feature_cache(path, 2, 16, INFO, "d") as writer:
            _write(writer)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FeatureCacheError, match="1 of 2 views were never written"):
        with create_feature_cache(path, 2, 16, INFO, "d") as writer:
            _write(writer)
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_bad_views(tmp_path):
    with create_feature_cache(tmp_path / "c.h5", 1, 16, INFO, "d") as writer:
        with pytest.raises(FeatureCacheError, match="feature map 1 has shape"):
            _write(writer, features=[np.zeros((8, 8, 8)), np.zeros((4, 2, 2))])
        with pytest.raises(FeatureCacheError, match="NaN"):
            _write(writer, features=[np.full((8, 8, 8), np.nan), np.zeros((4, 4, 4))])
        with pytest.raises(FeatureCacheError, match="exceeds render_size"):
            _write(writer, rgb=np.zeros((17, 16, 3), np.uint8))
        with pytest.raises(FeatureCacheError, match="HxWx3 uint8"):
            _write(writer, rgb=np.zeros((16, 16, 3), np.float32))
        _write(writer)
    assert (tmp_path / "c.h5").is_file()


def test_missing_file(tmp_path):
    path = tmp_path / "absent.h5"
    with pytest.raises(FeatureCacheError, match="no such feature cache") as err:
        with open_feature_cache(path):
            pass
    assert str(path) in str(err.value)


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_file(cache_file, keep):
    data = cache_file.read_bytes()
    cache_file.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(FeatureCacheError, match="truncated") as err:
        with open_feature_cache(cache_file, validate=True):
            pass
    assert str(cache_file) in str(err.value)


def test_not_hdf5(tmp_path):
    path = tmp_path / "x.h5"
    path.write_text("hello")
    with pytest.raises(FeatureCacheError, match="cannot open as HDF5"):
        with open_feature_cache(path):
            pass


def test_inconsistent_shapes(cache_file):
    with h5py.File(cache_file, "r+") as f:
        del f["c2w"]
        f.create_dataset("c2w", data=np.zeros((3, 4, 4), np.float32))
    with pytest.raises(
        FeatureCacheError, match=r"inconsistent layout: c2w has shape \(3, 4, 4\), expected \(4, 4, 4\)"
    ) as err:
        with open_feature_cache(cache_file):
            pass
    assert str(cache_file) in str(err.value)


def test_wrong_feature_dtype_and_missing_dataset(cache_file):
    with h5py.File(cache_file, "r+") as f:
        data = f["features/1"][()]
        del f["features/1"]
        f.create_dataset("features/1", data=data.astype(np.int8))
        del f["valid_hw/0"]
    with pytest.raises(FeatureCacheError, match="missing dataset.*valid_hw/0"):
        with open_feature_cache(cache_file):
            pass


def test_attribute_problems(cache_file):
    with h5py.File(cache_file, "r+") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(FeatureCacheError, match="format_version 99"):
        with open_feature_cache(cache_file):
            pass
    with h5py.File(cache_file, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["untrained"] = False
    with pytest.raises(FeatureCacheError, match="disagree"):
        with open_feature_cache(cache_file):
            pass
    with h5py.File(cache_file, "r+") as f:
        del f.attrs["teacher"]
    with pytest.raises(FeatureCacheError, match="missing attribute.*teacher"):
        with open_feature_cache(cache_file):
            pass


def test_validate_content(cache_file):
    with h5py.File(cache_file, "r+") as f:
        f["features/0"][3, 0, 0, 0] = np.nan
        f["valid_hw/1"][1] = (4, 4)
        f["c2w"][0, 0, 0] = 5.0
    with open_feature_cache(cache_file) as cache:
        with pytest.raises(FeatureCacheError) as err:
            cache.validate()
    message = str(err.value)
    assert str(cache_file) in message
    assert "features/0[3] has NaN" in message
    assert "valid_hw/1[1] = [4, 4], expected [3, 4]" in message
    assert "c2w[0] rotation is not orthonormal" in message
