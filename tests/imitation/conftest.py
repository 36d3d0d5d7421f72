"""Stand-ins for the imitation tests: an analytic "NeRF" and small teachers.

``AnalyticNeRF`` follows the :class:`san.models.nerf.NeRFModel` contract that the imitation stage
uses (``render_rays`` -> ``rgb, depth, accumulation, weights NxS, positions NxSx3``, ``to_grid``,
``render_camera``) for a soft sphere in front of a coloured background shell, so tests run in
milliseconds and do not depend on NeRF training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from san.cameras import Camera, RayBundle, look_at, single_camera
from san.teachers.base import TeacherInfo
from san.teachers.toy import ToyMultiScaleTeacher


@dataclass
class FakeRender:
    rgb: torch.Tensor
    depth: torch.Tensor
    accumulation: torch.Tensor
    weights: torch.Tensor
    positions: torch.Tensor


class AnalyticNeRF:
    """A dense sphere (radius 0.6) inside an opaque shell (radius 2.5); colour varies with position.
    Implements :class:`san.models.base.RadianceModel` (no geometry features)."""

    training = False
    geometry_features = None

    def __init__(self, samples: int = 48, near: float = 0.2, far: float = 6.0):
        self.samples, self.near, self.far = samples, near, far

    def eval(self):
        self.training = False
        return self

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def bounding_box(self) -> torch.Tensor:
        return torch.tensor([[-3.0, -3.0, -3.0], [3.0, 3.0, 3.0]])

    def density(self, points: torch.Tensor) -> torch.Tensor:
        r = points.norm(dim=-1)
        return 60.0 * torch.sigmoid((0.6 - r) * 40) + 60.0 * torch.sigmoid((r - 2.5) * 40)

    def color(self, points: torch.Tensor) -> torch.Tensor:
        return 0.5 + 0.5 * torch.sin(3.0 * points + torch.tensor([0.0, 1.0, 2.0]))

    def normalize_positions(self, points: torch.Tensor) -> torch.Tensor:
        return ((points + 3.0) / 6.0).clamp(0, 1)

    def render_rays(self, rays: RayBundle, features=None) -> FakeRender:
        t = torch.linspace(self.near, self.far, self.samples)
        delta = torch.full_like(t, (self.far - self.near) / (self.samples - 1))
        pos = rays.origins[:, None] + t[None, :, None] * rays.directions[:, None]
        sigma = self.density(pos.reshape(-1, 3)).reshape(pos.shape[:2])
        alpha = 1 - torch.exp(-sigma * delta)
        trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1] + 1e-10], 1), 1)
        w = alpha * trans
        rgb = (w[..., None] * self.color(pos.reshape(-1, 3)).reshape(*pos.shape)).sum(1)
        return FakeRender(rgb, (w * t).sum(1), w.sum(1), w, pos)

    def render_camera(self, camera: Camera, chunk: int | None = None) -> dict[str, torch.Tensor]:
        camera = single_camera(camera, "AnalyticNeRF.render_camera")
        width, height = camera.width, camera.height
        out = self.render_rays(camera.rays())
        return {"rgb": out.rgb.reshape(height, width, 3).clamp(0, 1), "depth": out.depth.reshape(height, width)}


class SingleMapTeacher(ToyMultiScaleTeacher):
    """The toy teacher's first map only (a SAM-like single-map teacher, 32 channels, 16x16)."""

    def __init__(self, input_size: int = 128):
        super().__init__(input_size=input_size)
        full = self.info
        self.info = TeacherInfo("toy_single_untrained", full.input_size, full.feature_shapes[:1], untrained=True)

    def embed(self, x):
        return super().embed(x)[:1]


def ring_cameras(n: int = 8, radius: float = 2.0, size: tuple[int, int] = (40, 30)) -> list[Camera]:
    """``n`` cameras on a ring looking at the origin, ``width x height`` images."""
    w, h = size
    K = np.array([[w * 0.9, 0, w / 2], [0, w * 0.9, h / 2], [0, 0, 1.0]])
    cams = []
    for k in range(n):
        a = 2 * np.pi * k / n
        eye = np.array([radius * np.cos(a), 0.4 * np.sin(3 * a), radius * np.sin(a)])
        cams.append(Camera(look_at(eye, np.zeros(3), np.array([0, -1.0, 0])), K, w, h))
    return cams


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """These tests run many tiny ops: one intra-op thread (tests/conftest.py) is 5-10x faster."""


@pytest.fixture
def nerf() -> AnalyticNeRF:
    return AnalyticNeRF()


@pytest.fixture(scope="session")
def toy_teacher() -> ToyMultiScaleTeacher:
    return ToyMultiScaleTeacher(input_size=128)


@pytest.fixture(scope="session")
def single_teacher() -> SingleMapTeacher:
    return SingleMapTeacher(128)


@pytest.fixture
def cameras() -> list[Camera]:
    return ring_cameras()


def write_cache(path, nerf: AnalyticNeRF, teacher, cameras, num_augmented: int = 4, render_size: int = 40):
    """An HDF5 feature cache of the analytic scene: training views, then square augmented ones."""
    from san.features.augment import camera_at_size, sample_augmented_cameras
    from san.features.cache import write_feature_cache

    views = [camera_at_size(c, render_size) for c in cameras]
    train_c2w = np.stack([c.c2w for c in cameras])
    views += sample_augmented_cameras(train_c2w, num_augmented, np.random.default_rng(0), (50, 70), render_size)
    rgb, feats = [], [[] for _ in teacher.info.feature_shapes]
    for v in views:
        image = nerf.render_camera(v)["rgb"]
        u8 = (image * 255).round().to(torch.uint8)
        rgb.append(u8.numpy())
        for i, m in enumerate(teacher.encode((u8.float() / 255).permute(2, 0, 1)[None])):
            feats[i].append(m[0].numpy())
    aug = [False] * len(cameras) + [True] * num_augmented
    write_feature_cache(
        path,
        rgb,
        np.stack([v.c2w for v in views]),
        np.stack([v.K for v in views]),
        [np.stack(f) for f in feats],
        aug,
        teacher.info,
        "0" * 64,
        render_size=render_size,
    )
    return path


@pytest.fixture
def cache_factory(tmp_path, nerf, cameras):
    made = {}

    def make(teacher, num_augmented: int = 4):
        key = (teacher.info.name, num_augmented)
        if key not in made:
            made[key] = write_cache(
                tmp_path / f"{teacher.info.name}_{num_augmented}.h5", nerf, teacher, cameras, num_augmented
            )
        return made[key]

    return make
