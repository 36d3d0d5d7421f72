"""Camera augmentation: pose interpolation and sampled cameras."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from san.cameras import look_at, orthonormality_error
from san.features.augment import interpolate_pose, sample_augmented_cameras


def _pose(rotvec, t):
    c2w = np.eye(4)
    c2w[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    c2w[:3, 3] = t
    return c2w


def test_interpolate_pose_endpoints_and_orthonormality():
    a = look_at([1.0, 0.0, 0.2], [0, 0, 0], [0, 0, 1])
    b = look_at([0.0, -1.5, 0.7], [0.1, 0, 0], [0, 0, 1])
    np.testing.assert_allclose(interpolate_pose(a, b, 0.0), a, atol=1e-9)
    np.testing.assert_allclose(interpolate_pose(a, b, 1.0), b, atol=1e-9)
    for r in np.linspace(0, 1, 11):
        c = interpolate_pose(a, b, r)
        assert orthonormality_error(c[:3, :3]) < 1e-9
        assert np.linalg.det(c[:3, :3]) == pytest.approx(1.0)
        np.testing.assert_allclose(c[3], [0, 0, 0, 1])


def test_interpolate_pose_is_slerp_and_lerp():
    a = _pose([0, 0, 0], [0, 0, 0])
    b = _pose([0, 0, math.pi / 2], [2, 4, -6])
    mid = interpolate_pose(a, b, 0.25)
    np.testing.assert_allclose(Rotation.from_matrix(mid[:3, :3]).as_rotvec(), [0, 0, math.pi / 8], atol=1e-9)
    np.testing.assert_allclose(mid[:3, 3], [0.5, 1.0, -1.5])
    # The shorter arc: 350 degrees one way is 10 degrees the other.
    c = _pose([0, 0, math.radians(-10)], [0, 0, 0])
    half = interpolate_pose(_pose([0, 0, math.radians(10)], [0, 0, 0]), c, 0.5)
    np.testing.assert_allclose(half[:3, :3], np.eye(3), atol=1e-9)
    with pytest.raises(ValueError, match="ratio"):
        interpolate_pose(a, b, 1.5)


def test_sample_augmented_cameras():
    a = look_at([1.0, 0.0, 0.0], [0, 0, 0], [0, 0, 1])
    b = look_at([0.0, 1.0, 0.0], [0, 0, 0], [0, 0, 1])
    cams = sample_augmented_cameras(np.stack([a, b]), 20, np.random.default_rng(3), (50, 70), 48)
    assert len(cams) == 20
    for c2w, K, width, height in ((c.c2w, c.K, c.width, c.height) for c in cams):
        assert (width, height) == (48, 48)
        assert orthonormality_error(c2w[:3, :3]) < 1e-9
        fov = math.degrees(2 * math.atan(0.5 * height / K[1, 1]))
        assert 50 - 1e-9 <= fov <= 70 + 1e-9
        assert K[0, 0] == K[1, 1] and K[0, 2] == K[1, 2] == 24
        # The position lies on the segment between the two training cameras.
        p = c2w[:3, 3]
        assert (
            np.linalg.norm(p - (p @ np.array([1, -1, 0]) / 2 * np.array([1, -1, 0]) + np.array([0.5, 0.5, 0]))) < 1e-9
        )
    again = sample_augmented_cameras(np.stack([a, b]), 20, np.random.default_rng(3), (50, 70), 48)
    for x, y in zip(cams, again):
        np.testing.assert_array_equal(x.c2w, y.c2w)
        np.testing.assert_array_equal(x.K, y.K)
    single = sample_augmented_cameras(a[None], 3, np.random.default_rng(0), size=16)
    np.testing.assert_allclose(single[0].c2w, a)
    with pytest.raises(ValueError, match="Nx4x4"):
        sample_augmented_cameras(np.zeros((0, 4, 4)), 1, np.random.default_rng(0))
