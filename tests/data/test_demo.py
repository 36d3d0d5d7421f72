"""The demo scene: config requirements, determinism, exact depth / ids against the ground-truth
meshes, and the COLMAP model read back through :mod:`san.data.colmap`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image
from scipy.spatial import cKDTree

from san.cameras import generate_rays, look_at, orthonormality_error
from san.data import colmap
from san.data.config import DemoSceneConfig
from san.data.demo import (
    BACKGROUND_ID,
    GROUND_ID,
    demo_cameras,
    demo_intrinsics,
    demo_objects,
    make_demo_scene,
    region_of_interest,
    render_demo_view,
    surface_meshes,
)
from san.pipeline.make_demo_scene import make_demo_scene as pipeline_make_demo_scene

TINY = DemoSceneConfig(num_views=3, width=40, height=32, supersample=1, mesh_subdivisions=3, mesh_sections=32)
SURFACE_TOLERANCE = 1e-3  # metres; mesh chords deviate < 2e-4 with the default mesh resolution


def _distance_to_mesh(mesh: trimesh.Trimesh, points: np.ndarray, k: int = 64, chunk: int = 256) -> np.ndarray:
    """Exact point-to-surface distance (no rtree): over every triangle of small meshes (the
    cylinder's and cone's slivers and fans are far from their centroids), over the ``k`` triangles
    with the nearest centroids for large, well-shaped ones (icosphere, ground rings)."""
    tri = np.asarray(mesh.triangles)
    if len(tri) <= 2048:
        idx = np.broadcast_to(np.arange(len(tri)), (len(points), len(tri)))
    else:
        idx = cKDTree(tri.mean(axis=1)).query(points, k=k)[1]
    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        sub, cand = points[start : start + chunk], idx[start : start + chunk]
        n = cand.shape[1]
        q = np.repeat(sub, n, axis=0)
        closest = trimesh.triangles.closest_point(tri[cand.reshape(-1)], q)
        out[start : start + chunk] = np.linalg.norm(closest - q, axis=1).reshape(len(sub), n).min(axis=1)
    return out


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory) -> Path:
    return make_demo_scene(tmp_path_factory.mktemp("demo") / "scene", TINY)


def test_default_config_meets_requirements():
    cfg = DemoSceneConfig()
    assert cfg.num_views >= 40 and cfg.width >= 160 and cfg.height >= 160
    poses = demo_cameras(cfg)
    assert poses.shape == (cfg.num_views, 4, 4)
    assert orthonormality_error(poses[:, :3, :3]) < 1e-9
    assert np.allclose(np.linalg.det(poses[:, :3, :3]), 1.0)
    target = np.array([0.0, 0.0, cfg.target_height])
    to_target = target - poses[:, :3, 3]
    to_target /= np.linalg.norm(to_target, axis=1, keepdims=True)
    assert np.allclose(np.einsum("ij,ij->i", poses[:, :3, 2], to_target), 1.0)  # optical axis hits the centre
    assert np.all(poses[:, 2, 1] < 0)  # image-down (+y) points down in the world: world up is up
    assert np.all(np.linalg.norm(poses[:, :3, 3], axis=1) < cfg.dome_radius)
    assert np.allclose(np.linalg.norm(poses[:, :3, 3] - target, axis=1), cfg.radius)
    ids = [o.id for o in demo_objects(cfg)]
    assert 3 <= len(ids) <= 4 and ids == list(range(2, 2 + len(ids)))
    assert len({o.shape for o in demo_objects(cfg)}) == len(ids)
    K = demo_intrinsics(cfg)
    assert np.isclose(2 * np.degrees(np.arctan(cfg.width / 2 / K[0, 0])), cfg.fov_deg)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError):
        DemoSceneConfig(supersample=0)
    with pytest.raises(ValueError):
        DemoSceneConfig(radius=20.0, dome_radius=12.0)


def test_scene_folder_layout(tiny_scene: Path):
    names = [f"view_{k:03d}" for k in range(TINY.num_views)]
    assert sorted(p.name for p in (tiny_scene / "images").iterdir()) == [f"{n}.png" for n in names]
    assert not [p for p in tiny_scene.parent.iterdir() if p.name.startswith(".")], "temporary folder left behind"
    object_ids = {o.id for o in demo_objects(TINY)}
    for n in names:
        rgb = Image.open(tiny_scene / "images" / f"{n}.png")
        assert rgb.mode == "RGB" and rgb.size == (TINY.width, TINY.height)
        mask = np.asarray(Image.open(tiny_scene / "masks" / f"{n}.png"))
        assert mask.dtype == np.uint8 and mask.shape == (TINY.height, TINY.width)
        assert set(np.unique(mask)) <= {BACKGROUND_ID, GROUND_ID} | object_ids
        depth = np.load(tiny_scene / "depth" / f"{n}.npy")
        assert depth.dtype == np.float32 and depth.shape == (TINY.height, TINY.width)
        assert np.all(np.isfinite(depth)) and np.all(depth > 0)
    gt = json.loads((tiny_scene / "scene_gt.json").read_text())
    assert [o["id"] for o in gt["objects"]] == sorted(object_ids)
    for entry in [*gt["objects"], gt["ground"]]:
        mesh = trimesh.load(tiny_scene / entry["mesh"], force="mesh", process=False)
        assert len(mesh.faces) > 0
    roi = np.asarray(gt["region_of_interest"])
    assert roi.shape == (2, 3) and np.all(roi[1] > roi[0])
    assert np.allclose(roi, region_of_interest(TINY))
    assert len(gt["cameras"]["views"]) == TINY.num_views


def test_deterministic_bytes(tiny_scene: Path, tmp_path: Path):
    again = pipeline_make_demo_scene(tmp_path / "scene", TINY)
    files = sorted(p.relative_to(tiny_scene) for p in tiny_scene.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (tiny_scene / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_rewrite_replaces_folder(tmp_path: Path):
    out = tmp_path / "scene"
    (out / "stale").mkdir(parents=True)
    cfg = DemoSceneConfig(num_views=1, width=16, height=16, supersample=1, mesh_subdivisions=2, mesh_sections=16)
    make_demo_scene(out, cfg)
    assert not (out / "stale").exists() and (out / "scene_gt.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]


def test_colmap_model_round_trip(tiny_scene: Path):
    model = colmap.read_model(tiny_scene / "sparse" / "0", with_points=True)
    assert [c.model for c in model.cameras.values()] == ["PINHOLE"]
    K, dist = colmap.camera_intrinsics(model.cameras[1])
    assert np.allclose(K, demo_intrinsics(TINY)) and not any(dist.values())
    poses = demo_cameras(TINY)
    images = sorted(model.images.values(), key=lambda im: im.name)
    assert [im.name for im in images] == [f"view_{k:03d}.png" for k in range(TINY.num_views)]
    for im, c2w in zip(images, poses):
        assert np.allclose(colmap.image_c2w(im), c2w, atol=1e-9)
    points = np.array([p.xyz for p in model.points.values()])
    assert len(points) > 0 and np.all(np.linalg.norm(points, axis=1) <= TINY.dome_radius + 1e-6)
    capture = colmap.load_colmap(tiny_scene)
    assert len(capture.frames) == TINY.num_views
    assert np.allclose(capture.frames[0].c2w, poses[0], atol=1e-9)


def _surface_points(c2w: np.ndarray, K: np.ndarray, width: int, height: int, config: DemoSceneConfig):
    view = render_demo_view(c2w, K, width, height, config)
    rays = generate_rays(torch.as_tensor(c2w), torch.as_tensor(K), width, height)
    points = rays.origins.numpy() + view["depth"].reshape(-1, 1).astype(np.float64) * rays.directions.numpy()
    return points, view["ids"].reshape(-1), view


def _box_distance(points: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.maximum(0.0, np.maximum(bounds[0] - points, points - bounds[1])), axis=1)


def test_depth_and_ids_match_meshes():
    cfg = DemoSceneConfig()  # default mesh resolution: the tolerance is about the real files
    named = surface_meshes(cfg)
    meshes = {o.id: named[o.name] for o in demo_objects(cfg)}
    meshes[GROUND_ID] = named["ground"]
    K = demo_intrinsics(DemoSceneConfig(width=40, height=40))
    c2ws = [
        demo_cameras(cfg)[0],
        look_at(np.array([2.5, -2.0, 1.8]), np.array([0.0, 0.0, 0.3]), np.array([0.0, 0.0, 1.0])),
    ]
    for c2w in c2ws:
        points, ids, _ = _surface_points(c2w, K, 40, 40, cfg)
        assert set(meshes) | {BACKGROUND_ID} == set(np.unique(ids))
        own = np.full(len(points), np.inf)
        for i, mesh in meshes.items():
            own[ids == i] = _distance_to_mesh(mesh, points[ids == i])
        hit = ids != BACKGROUND_ID
        assert own[hit].max() < SURFACE_TOLERANCE, f"hit points off their mesh by {own[hit].max():.2e}"
        for i, mesh in meshes.items():  # no other surface is nearer than a pixel's own (within tolerance)
            near = hit & (ids != i) & (_box_distance(points, mesh.bounds) < own + SURFACE_TOLERANCE)
            assert np.all(own[near] <= _distance_to_mesh(mesh, points[near]) + SURFACE_TOLERANCE), (
                f"pixels nearer to id {i}"
            )
        sky = points[~hit]  # the dome: analytic check (its icosphere mesh is only a picture of it)
        assert np.allclose(np.linalg.norm(sky, axis=1), cfg.dome_radius, atol=1e-5)
        assert np.all(sky[:, 2] >= -1e-6)


def test_render_any_camera_supersampled():
    cfg = DemoSceneConfig(supersample=2)
    c2w = look_at(np.array([0.0, -3.0, 1.5]), np.array([0.0, 0.0, 0.3]), np.array([0.0, 0.0, 1.0]))
    K = demo_intrinsics(DemoSceneConfig(width=24, height=20))
    sharp = render_demo_view(c2w, K, 24, 20, DemoSceneConfig(supersample=1))
    smooth = render_demo_view(c2w, K, 24, 20, cfg)
    assert smooth["rgb"].shape == (20, 24, 3) and smooth["rgb"].dtype == np.float32
    assert 0.0 <= smooth["rgb"].min() and smooth["rgb"].max() <= 1.0
    assert np.array_equal(sharp["ids"], smooth["ids"]) and np.array_equal(sharp["depth"], smooth["depth"])
    assert np.abs(sharp["rgb"] - smooth["rgb"]).mean() < 0.1
