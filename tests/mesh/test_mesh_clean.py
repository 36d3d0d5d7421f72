"""Scene-mesh cleaning: camera region, user box, small pieces, hole closing, whole-scene Chamfer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from san.cameras import intrinsics_matrix, look_at
from san.config import ConfigError
from san.mesh.chamfer import evaluate_scene_against_ground_truth, seen_by_cameras
from san.mesh.clean import area_outside_box, boundary_loops, close_holes, piece_stats, region_mask, remove_small_pieces
from san.mesh.config import MeshConfig
from san.mesh.extract import extract_mesh_with_stats, mesh_cameras, mesh_config


def orbit(n: int = 16, radius: float = 4.0, elevation_deg: float = 30.0, size: int = 64, fov_deg: float = 50.0):
    """Cameras on a ring around the origin, looking at it, +z up (like the demo scene)."""
    f = size / 2 / math.tan(math.radians(fov_deg) / 2)
    K = intrinsics_matrix(f, f, size / 2, size / 2)
    e = math.radians(elevation_deg)
    poses = [
        look_at(
            np.array([radius * math.cos(a) * math.cos(e), radius * math.sin(a) * math.cos(e), radius * math.sin(e)]),
            np.zeros(3),
            np.array([0.0, 0.0, 1.0]),
        )
        for a in np.linspace(0, 2 * math.pi, n, endpoint=False)
    ]
    return mesh_cameras(poses, [K] * n, [(size, size)] * n)


def ground(half: float, step: float) -> trimesh.Trimesh:
    n = int(round(2 * half / step))
    xs = np.linspace(-half, half, n + 1)
    v = np.array([[x, y, 0.0] for y in xs for x in xs])
    f = []
    for j in range(n):
        for i in range(n):
            a = j * (n + 1) + i
            f += [[a, a + 1, a + n + 2], [a, a + n + 2, a + n + 1]]
    return trimesh.Trimesh(v, np.array(f), process=False)


def test_camera_region_cuts_the_far_floor_and_keeps_the_middle():
    floor = ground(12.0, 0.25)
    cams = orbit()
    inside = region_mask(floor, "cameras", cams, 0.25)
    r = np.linalg.norm(floor.triangles_center[:, :2], axis=1)
    assert inside[r < 1.0].all()  # the middle: seen by every camera
    assert not inside[r > 9.0].any()  # the horizon: seen by a few cameras at a time
    # a smaller share keeps more
    assert region_mask(floor, "cameras", cams, 0.1).sum() > inside.sum()


def test_box_region_is_in_the_input_frame():
    floor = ground(2.0, 0.5)

    def shift(p):
        return p + np.array([10.0, 0.0, 0.0])  # mesh frame -> "input" frame

    box = np.array([[9.0, -1.0, -1.0], [11.0, 1.0, 1.0]])
    inside = region_mask(floor, "box", box=box, to_input=shift)
    c = floor.triangles_center
    assert np.array_equal(inside, (np.abs(c[:, 0]) <= 1.0) & (np.abs(c[:, 1]) <= 1.0))
    assert np.isclose(area_outside_box(floor, box, shift), 16.0 - 4.0)
    with pytest.raises(ValueError, match="region_box"):
        region_mask(floor, "box")
    with pytest.raises(ValueError, match="training cameras"):
        region_mask(floor, "cameras", None)


def test_small_pieces_are_removed_by_area_and_counted():
    big = trimesh.creation.icosphere(subdivisions=3)
    specks = [
        trimesh.creation.icosphere(subdivisions=1, radius=0.05).apply_translation([3 + i, 0, 0]) for i in range(5)
    ]
    medium = trimesh.creation.icosphere(subdivisions=1, radius=0.4).apply_translation([0, 3, 0])
    scene = trimesh.util.concatenate([big, medium, *specks])
    stats = piece_stats(scene)
    assert stats["pieces"] == 7 and stats["pieces_over_1pct"] == 2
    cleaned = remove_small_pieces(scene, 0.01)
    assert piece_stats(cleaned)["pieces"] == 2
    assert np.isclose(cleaned.area, big.area + medium.area)
    assert remove_small_pieces(scene, 0.0) is scene


def test_hole_closing_closes_an_open_bottom():
    cyl = trimesh.creation.cylinder(radius=0.5, height=1.0, sections=32)
    bottom = cyl.triangles_center[:, 2] < -0.49
    open_cyl = trimesh.Trimesh(cyl.vertices, cyl.faces[~bottom], process=False)
    open_cyl.merge_vertices()
    assert len(boundary_loops(open_cyl)) == 1 and not open_cyl.is_watertight
    closed, n = close_holes(open_cyl)
    assert n == 1 and closed.is_watertight and closed.volume > 0
    assert np.array_equal(closed.faces[: len(open_cyl.faces)], open_cyl.faces)  # old faces keep their indices
    # a hole longer than the limit stays open
    assert close_holes(open_cyl, max_hole_fraction=0.5)[1] == 0


def test_extraction_reports_region_and_pieces():
    def density(p):
        import torch

        sphere = (0.5 - (p - torch.tensor([0.0, 0.0, 0.5])).norm(dim=-1)) / 0.03
        floor = -p[:, 2] / 0.03
        return 10.0 * torch.exp(torch.maximum(sphere, floor).clamp(max=30.0))

    cams = orbit(n=12, radius=3.0)
    config = MeshConfig(resolution=64, target_faces=0, region_view_fraction=0.5)
    result = extract_mesh_with_stats(density, ([-6, -6, -0.5], [6, 6, 1.5]), config, cams)
    clean = result.stats["clean"]
    assert clean["region"] == "cameras" and clean["area_outside_region_removed"] > 0
    assert {"pieces", "pieces_over_1pct", "area", "before_pieces"} <= set(clean)
    assert list(result.stats["counts"]) == [
        "marching_cubes",
        "visibility",
        "components",
        "region",
        "pieces",
        "decimation",
    ]
    r = np.linalg.norm(result.mesh.triangles_center[:, :2], axis=1)
    assert r.max() < 5.5 and result.mesh.bounds[1, 2] > 0.9  # far floor cut, sphere kept
    none = extract_mesh_with_stats(
        density, ([-6, -6, -0.5], [6, 6, 1.5]), MeshConfig(resolution=64, target_faces=0, region="none"), cams
    )
    assert none.mesh.area > result.mesh.area and "region" not in none.stats["counts"]


def test_config_checks_new_keys():
    assert mesh_config({"preset": "paper"}).texture_size == 1024
    with pytest.raises((ValueError, ConfigError), match="region_box"):
        mesh_config({"region": "box"})
    with pytest.raises((ValueError, ConfigError), match="region_view_fraction"):
        mesh_config({"region_view_fraction": 0.0})
    with pytest.raises((ValueError, ConfigError)):
        mesh_config({"texture_view": "sideways"})
    cfg = mesh_config({"region": "box", "region_box": [[-1, -1, -1], [1, 1, 1]]})
    assert cfg.region_box == ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))


def test_whole_scene_chamfer_counts_the_ground_in_view():
    cams = orbit()
    floor = ground(12.0, 0.5)
    box = trimesh.creation.box(extents=[1, 1, 1]).apply_translation([0, 0, 0.5])
    same = evaluate_scene_against_ground_truth(
        trimesh.util.concatenate([floor, box]), [floor, box], cams, n_samples=20_000
    )
    assert same["chamfer_fraction"] < 0.01 and same["passed"]
    # a mesh missing the ground is far from the ground truth even though the object is perfect
    only_box = evaluate_scene_against_ground_truth(box, [floor, box], cams, n_samples=20_000)
    assert only_box["chamfer_gt_to_mesh"] > 10 * same["chamfer_gt_to_mesh"]
    # a sagging floor is measured
    sag = floor.copy()
    sag.vertices[:, 2] -= 0.05 * np.linalg.norm(sag.vertices[:, :2], axis=1) ** 2 / 4
    sagged = evaluate_scene_against_ground_truth(
        trimesh.util.concatenate([sag, box]), [floor, box], cams, n_samples=20_000
    )
    assert sagged["chamfer_symmetric"] > 3 * same["chamfer_symmetric"]
    assert seen_by_cameras(np.array([[0.0, 0.0, 0.0], [50.0, 0.0, 0.0]]), cams, 4).tolist() == [True, False]
