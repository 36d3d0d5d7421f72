"""Feature cache content and locks (issue 13): NaNs hidden in an intact-looking chunk are caught
where the cache is read (case R2-23b); a file locked by a writer is not called corrupt (case B2-08)."""

from __future__ import annotations

import subprocess
import sys
import time

import h5py
import pytest

from san.cli import main as cli_main
from san.features.cache import FeatureCacheError, FeatureCacheLockedError, open_feature_cache, write_feature_cache
from san.teachers.base import TeacherInfo

INFO = TeacherInfo("fake_untrained", 64, ((8, 8, 8), (4, 4, 4)), untrained=True)  # as tests/features/conftest.py


def _poison_chunk(path, view: int, n_bytes: int = 64) -> None:
    """R2-23b: 64 bytes of 0xFF inside one view's features chunk (float16 0xFFFF is NaN; no read error)."""
    with h5py.File(path, "r") as f:
        ds = f["features/0"]
        assert ds.chunks is not None and ds.chunks[0] == 1  # one chunk per view
        info = ds.id.get_chunk_info_by_coord((view, 0, 0, 0))
        offset, size = info.byte_offset, info.size
    with open(path, "r+b") as f:
        f.seek(offset + size // 2)
        f.write(b"\xff" * n_bytes)


@pytest.fixture
def plain_cache(tmp_path, cache_arrays):
    path = tmp_path / "fake_untrained.h5"
    write_feature_cache(path, teacher=INFO, nerf_digest="0" * 64, compression="none", **cache_arrays)
    return path


def test_r2_23b_nan_features_are_refused_where_they_are_read(plain_cache, capsys):
    _poison_chunk(plain_cache, view=1)
    with open_feature_cache(plain_cache) as cache:  # the structure is intact
        cache.features(0)
        with pytest.raises(
            FeatureCacheError,
            match=r"features/0\[1\] has NaN/inf values \(\d+ of 512\): the cache is corrupt; delete it and rerun rule cache_features",
        ):
            cache.features(1)
        with pytest.raises(FeatureCacheError, match=r"features/0\[1\] has NaN/inf"):
            cache.view(1)
        with pytest.raises(FeatureCacheError, match=r"features/0\[1\] has NaN/inf"):
            cache.validate(full=True)
    assert cli_main(["inspect", str(plain_cache), "--full"]) == 1
    err = capsys.readouterr().err
    assert "features/0[1] has NaN/inf" in err and "INVALID" in err


def test_imitation_rows_from_a_poisoned_cache_never_reach_training(plain_cache):
    from san.imitation.trainer import cached_view_entry

    _poison_chunk(plain_cache, view=2)
    with open_feature_cache(plain_cache) as cache:
        cached_view_entry(cache, 0)
        with pytest.raises(FeatureCacheError, match=r"features/0\[2\] has NaN/inf"):
            cached_view_entry(cache, 2)


def test_b2_08_a_locked_cache_is_not_called_corrupt(cache_file, capsys):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import h5py, sys, time; f = h5py.File(sys.argv[1], 'r+'); print('ready', flush=True); time.sleep(60)",
            str(cache_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        try:
            with open_feature_cache(cache_file):
                pytest.skip(
                    "HDF5 file locking is disabled here (HDF5_USE_FILE_LOCKING=FALSE or the file system has no locks)"
                )
        except FeatureCacheLockedError as e:
            assert (
                "locked by another process that has it open for writing" in str(e)
                and "corrupt" not in str(e).split(";")[0]
            )
        assert cli_main(["inspect", str(cache_file)]) == 1
        err = capsys.readouterr().err
        assert (
            "LOCKED (not checked; not known to be bad)" in err
            and "INVALID" not in err
            and "truncated or corrupt" not in err
        )
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert cli_main(["inspect", str(cache_file)]) == 0  # the same file, intact, once the writer is gone
