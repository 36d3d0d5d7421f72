"""Shared fixtures.

Real scenes live in ``../shared/data`` beside the checkout (development machines and CI). In a
user's fresh clone they are absent: tests that need them skip with the reason, except under
``CI=true`` where missing data is a failure.

Stand-ins for a segmentation session's three parts (used by tests/interaction and tests/pipeline),
built on small synthetic meshes:

* A *mesh renderer*: ``render_fn`` draws a triangle mesh with the face-id z-buffer of
  :mod:`san.rendering.mesh_raster` (depth = distance along the ray; rgb = a colour per face).
* A *disk decoder*: ``decode_fn`` returns the disk of radius ``radius`` around each positive click,
  minus the disks around negative clicks, and records every call.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from san.cameras import Camera, intrinsics_matrix, look_at
from san.rendering.mesh_raster import rasterize_faces

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_CASES = REPO.parent / "shared" / "cases"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _drop_san_log_handlers():
    """``san.cli.main`` and ``run_rule`` install stderr (and log file) handlers on the root logger
    (:func:`san.utils.progress.setup_logging`); remove them after each test, so that a later test
    does not log into an earlier test's captured stream."""
    import logging

    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if getattr(h, "_san_handler", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def _shared(sub: str, root: Path = SHARED_DATA) -> Path:
    path = root / sub
    if not path.exists():
        msg = f"real test data not found at {path} (it lives in ../shared/{root.name} beside the checkout)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + "; under CI=true missing data is a failure")
        pytest.skip(msg)
    return path


def load_script(relative: str):
    """The checkout's script ``relative`` (``"scripts/convert_benchmark.py"``) imported as a module
    named after its file, without running its ``__main__`` block."""
    import importlib.util

    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fern_dir() -> Path:
    """``../shared/data/llff_fern/fern``: poses_bounds.npy, images_8, sparse/0/cameras.bin."""
    return _shared("llff_fern/fern")


@pytest.fixture(scope="session")
def lego_dir() -> Path:
    """``../shared/data/nerf_synthetic_lego/lego``: transforms_*.json with a subset of the PNGs."""
    return _shared("nerf_synthetic_lego/lego")


@pytest.fixture(scope="session")
def build_case(tmp_path_factory):
    """``build_case("B2-02") -> Path``: the failing input of ``../shared/cases/B2-02`` built by its own
    script from ``../shared/data`` (once per session; skipped without ``../shared``, failed under
    ``CI=true``)."""
    built: dict[str, Path] = {}

    def build(name: str) -> Path:
        if name not in built:
            script = _shared(f"{name}/build.py", SHARED_CASES)
            _shared("llff_fern/fern")
            out = tmp_path_factory.mktemp(name.lower().replace("-", "_")) / "case"
            env = {**os.environ, "PYTHONPATH": str(REPO), "SAN_SHARED": str(SHARED_DATA)}
            subprocess.run([sys.executable, str(script), str(out)], check=True, env=env, capture_output=True, text=True)
            built[name] = out
        return built[name]

    return build


@pytest.fixture
def workflow_dir(tmp_path) -> Path:
    """A scratch folder to run Snakemake in: links to the checkout's ``Snakefile``, ``workflow/``,
    ``config/`` and ``slurm/`` (so ``.snakemake/`` locks and metadata never land in the checkout,
    and a run here does not collide with one in the checkout)."""
    work = tmp_path / "work"
    work.mkdir()
    for name in ("Snakefile", "workflow", "config", "slurm"):
        (work / name).symlink_to(REPO / name)
    return work


@pytest.fixture
def one_thread():
    """One torch intra-op thread for the test, then the previous count: tests of many tiny tensor ops
    run 5-20x faster so on a shared 2-core machine (OpenMP oversubscription stalls otherwise).
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device("cpu")


# ------------------------------------------------------------------ tiny models


def tiny_nerf_model(levels: int, log2_hashmap_size: int, max_resolution: int, proposal_log2_hashmap_size: int) -> dict:
    """A tiny proposal-sampled NeRF's ``nerf.model`` section (for :func:`san.config.from_dict` with
    :class:`san.models.config.NeRFConfig`): a ``levels``-level hash grid of 2 features per level,
    16-wide MLPs, 8 samples after one 16-sample proposal network (2 levels, resolution 16), torch
    backend."""
    return {
        "field": {
            "grid": {
                "num_levels": levels,
                "features_per_level": 2,
                "log2_hashmap_size": log2_hashmap_size,
                "base_resolution": 4,
                "max_resolution": max_resolution,
            },
            "hidden_dim": 16,
            "color_hidden_dim": 16,
        },
        "sampler": {"num_samples": 8, "proposal_samples": [16]},
        "proposals": [
            {
                "grid": {
                    "num_levels": 2,
                    "features_per_level": 2,
                    "log2_hashmap_size": proposal_log2_hashmap_size,
                    "max_resolution": 16,
                },
                "hidden_dim": 8,
            }
        ],
        "backend": "torch",
    }


# ------------------------------------------------------------------ segmentation stand-ins


def square(size: float, z: float, centre=(0.0, 0.0), subdivisions: int = 0) -> trimesh.Trimesh:
    """Axis-aligned square in the plane ``z``, facing ``+z``, split into triangles."""
    h = size / 2
    cx, cy = centre
    v = np.array([[cx - h, cy - h, z], [cx + h, cy - h, z], [cx + h, cy + h, z], [cx - h, cy + h, z]])
    mesh = trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False)
    for _ in range(subdivisions):
        mesh = mesh.subdivide()
    return mesh


class MeshRenderer:
    """``render_fn(camera) -> {"rgb", "depth", "face"}`` of a mesh (a session ``RenderFn``); counts its calls."""

    def __init__(self, mesh: trimesh.Trimesh):
        self.mesh = mesh
        self.calls = 0
        rng = np.random.default_rng(0)
        self.colours = torch.as_tensor(rng.uniform(0.1, 0.9, (len(mesh.faces) + 1, 3)), dtype=torch.float32)

    def __call__(self, camera: Camera):
        assert isinstance(camera, Camera) and not camera.batched
        self.calls += 1
        r = rasterize_faces(self.mesh.vertices, self.mesh.faces, camera.c2w, camera.K, camera.width, camera.height)
        rgb = self.colours[r.face_ids.clamp(min=-1) + 1]
        rgb[r.face_ids < 0] = 0.0
        return {"rgb": rgb, "depth": r.depth, "face": r.face_ids}


class DiskDecoder:
    """Mask = union of disks around positive clicks minus disks around negative ones."""

    def __init__(self, radius: float = 6.0):
        self.radius = radius
        self.calls = []

    def __call__(self, features, prompts, image_size):
        self.calls.append(prompts)
        H, W = image_size
        ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
        mask = torch.zeros(H, W, dtype=torch.bool)
        for (x, y), lab in zip(prompts.points.tolist(), prompts.labels.tolist()):
            disk = (xs - x) ** 2 + (ys - y) ** 2 <= self.radius**2
            mask = mask | disk if lab == 1 else mask
        for (x, y), lab in zip(prompts.points.tolist(), prompts.labels.tolist()):
            if lab == 0:
                mask &= ~((xs - x) ** 2 + (ys - y) ** 2 <= self.radius**2)
        if prompts.box is not None:
            x0, y0, x1, y1 = prompts.box.tolist()
            mask |= (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
        # Two candidates: the mask (score 0.9) and its complement (score 0.1).
        return torch.stack([mask, ~mask]), torch.tensor([0.9, 0.1])


def features_stub(camera: Camera):
    assert isinstance(camera, Camera) and not camera.batched
    return [torch.zeros(1, 4, 8, 8)]


def camera(eye, target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), f: float = 60.0, width: int = 64, height: int = 48):
    """``(c2w, K, width, height)`` looking from ``eye`` at ``target``."""
    return (
        look_at(np.array(eye, float), np.array(target, float), np.array(up, float)),
        intrinsics_matrix(f, f, width / 2, height / 2),
        width,
        height,
    )


@pytest.fixture
def make_square():
    return square


@pytest.fixture
def make_camera():
    return camera


@pytest.fixture
def disk_decoder():
    return DiskDecoder()


@pytest.fixture
def mesh_renderer():
    return MeshRenderer


@pytest.fixture
def features_fn():
    return features_stub
