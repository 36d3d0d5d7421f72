"""Mesh extraction on analytic densities (no trained NeRF needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial.transform import Rotation

from san.cameras import Camera, intrinsics_matrix, look_at
from san.config import ConfigError
from san.data.scene import Frame, Normalization
from san.mesh.chamfer import chamfer_distance
from san.mesh.config import MeshConfig
from san.mesh.extract import (
    extract_mesh,
    extract_mesh_with_stats,
    face_component_labels,
    face_view_counts,
    mesh_cameras,
    mesh_config,
    to_input_frame,
    view_distortion,
)

BOX = ([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0])
SMALL = MeshConfig(resolution=48, target_faces=0, chamfer_samples=20_000)


def blob_density(centres, radii, width: float = 0.04):
    """Union of spheres: density ``10 * exp((r - |p - c|) / width)``, exactly 10 (the default
    threshold) on each sphere's surface."""
    centres = torch.tensor(centres, dtype=torch.float32)
    radii = torch.tensor(radii, dtype=torch.float32)

    def density(p: torch.Tensor) -> torch.Tensor:
        d = torch.cdist(p.float(), centres)  # P x K
        return 10.0 * torch.exp(((radii - d) / width).clamp(max=30.0)).max(dim=1).values

    return density


def normal_colour(points: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Colour = the outward normal mapped to [0, 1] (``direction = -normal``)."""
    return 0.5 - 0.5 * directions


def ring_cameras(n: int = 8, radius: float = 3.0, size: int = 64, fov_deg: float = 60.0):
    f = size / 2 / math.tan(math.radians(fov_deg) / 2)
    K = intrinsics_matrix(f, f, size / 2, size / 2)
    poses = []
    for k in range(n):
        a = 2 * math.pi * k / n
        eye = np.array([radius * math.cos(a), radius * math.sin(a), 0.8])
        poses.append(look_at(eye, np.zeros(3), np.array([0.0, 0.0, 1.0])))
    return mesh_cameras(poses, [K] * n, [(size, size)] * n)


def test_sphere_is_recovered_closed_outward_and_coloured(tmp_path):
    density = blob_density([[0.1, -0.05, 0.0]], [0.5])
    result = extract_mesh_with_stats(density, BOX, SMALL, ring_cameras(), normal_colour)
    mesh = result.mesh
    assert np.isfinite(mesh.vertices).all() and len(mesh.faces) > 1000
    assert mesh.is_watertight
    gt = trimesh.creation.icosphere(subdivisions=5, radius=0.5)
    gt.apply_translation([0.1, -0.05, 0.0])
    d = chamfer_distance(mesh, gt, n_samples=20_000)
    diag = 2 * math.sqrt(3)
    assert d["symmetric"] < 0.005 * diag  # far under the 2 % bar
    # Normals point out of the dense region; colours follow them.
    centre = np.array([0.1, -0.05, 0.0])
    outward = np.einsum("ij,ij->i", mesh.face_normals, mesh.triangles_center - centre)
    assert (outward > 0).all()
    rgb = mesh.visual.vertex_colors[:, :3].astype(float) / 255
    expected = 0.5 + 0.5 * mesh.vertex_normals
    assert np.abs(rgb - expected).max() < 0.02
    # Stats name every step.
    assert set(result.stats["counts"]) == {
        "marching_cubes",
        "visibility",
        "components",
        "region",
        "pieces",
        "decimation",
    }
    assert result.stats["grid"]["shape"] == [48, 48, 48]
    # Export and reload (PLY and GLB keep geometry and colours).
    for name in ("m.ply", "m.glb"):
        mesh.export(tmp_path / name)
        back = trimesh.load(tmp_path / name, force="mesh")
        assert len(back.faces) == len(mesh.faces)
        assert np.allclose(np.sort(back.vertices, axis=0), np.sort(mesh.vertices, axis=0), atol=1e-5)
        assert back.visual.kind == "vertex"
        assert (
            np.abs(
                back.visual.vertex_colors[:, :3].astype(int).mean(0) - mesh.visual.vertex_colors[:, :3].mean(0)
            ).max()
            < 1
        )


def test_slab_and_chunk_sizes_do_not_change_the_mesh():
    density = blob_density([[0.0, 0.0, 0.0], [0.45, 0.2, 0.1]], [0.45, 0.3])
    one = extract_mesh(density, BOX, MeshConfig(resolution=40, slab=1000, chunk=1 << 20, target_faces=0))
    slabs = extract_mesh(density, BOX, MeshConfig(resolution=40, slab=3, chunk=777, target_faces=0))
    # Same triangles up to float32 rounding inside marching cubes (slab offsets are added after it).
    assert len(one.vertices) == len(slabs.vertices) and len(one.faces) == len(slabs.faces)

    def triangles(mesh):
        keys = [tuple(v) for v in np.round(mesh.vertices, 5).tolist()]
        return {frozenset(keys[i] for i in f) for f in mesh.faces.tolist()}

    assert triangles(one) == triangles(slabs)
    assert slabs.is_watertight  # the slab seams are closed


def test_anisotropic_box_gets_near_cubic_voxels():
    density = blob_density([[0.0, 0.0, 0.0]], [0.3])
    stats = extract_mesh_with_stats(
        density, ([-2.0, -1.0, -0.5], [2.0, 1.0, 0.5]), MeshConfig(resolution=41, target_faces=0)
    ).stats
    assert stats["grid"]["shape"] == [41, 21, 11]
    assert np.allclose(stats["grid"]["spacing"], 0.1)


def test_faces_outside_every_camera_are_removed():
    # Cameras near z = -3 look along +z at a blob at the origin. One blob sits beside the frusta,
    # one straight behind the cameras (it projects into the image but has z < 0).
    seen, beside, behind = [0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, -5.0]
    density = blob_density([seen, beside, behind], [0.4, 0.4, 0.4])
    f = 64 / 2 / math.tan(math.radians(15))
    K = intrinsics_matrix(f, f, 32, 32)
    poses = [
        look_at(np.array([x, y, -3.0]), np.array([x, y, 0.0]), np.array([0.0, -1.0, 0.0]))
        for x in (-0.2, 0.2)
        for y in (-0.2, 0.2)
    ]
    cams = mesh_cameras(poses, [K] * 4, [(64, 64)] * 4)
    box = ([-2.6, -0.6, -5.6], [2.6, 0.6, 0.6])
    cfg = MeshConfig(resolution=96, min_component_fraction=0.0, target_faces=0)
    everything = extract_mesh(density, box, cfg)
    culled = extract_mesh(density, box, cfg, cameras=cams)

    def near(mesh, c):
        return int((np.linalg.norm(mesh.vertices - np.asarray(c), axis=1) < 0.6).sum())

    assert near(everything, beside) > 0 and near(everything, behind) > 0
    assert near(culled, beside) == 0 and near(culled, behind) == 0
    assert near(culled, seen) == near(everything, seen)
    assert (face_view_counts(culled, cams) >= 1).all()
    # min_views = 0 turns the step off (and region "none" the camera region of san.mesh.clean).
    off = extract_mesh(
        density,
        box,
        MeshConfig(resolution=96, min_component_fraction=0.0, target_faces=0, min_views=0, region="none"),
        cameras=cams,
    )
    assert len(off.faces) == len(everything.faces)


def test_small_components_are_removed():
    density = blob_density([[-0.3, 0.0, 0.0], [0.7, 0.0, 0.0]], [0.5, 0.12])
    keep_all = extract_mesh(density, BOX, MeshConfig(resolution=64, min_component_fraction=0.0, target_faces=0))
    cleaned = extract_mesh(density, BOX, MeshConfig(resolution=64, min_component_fraction=0.1, target_faces=0))
    assert len(np.unique(face_component_labels(keep_all))) == 2
    assert len(np.unique(face_component_labels(cleaned))) == 1
    assert np.linalg.norm(cleaned.vertices - [0.7, 0.0, 0.0], axis=1).min() > 0.3


def test_decimation_reaches_target_and_keeps_shape():
    pytest.importorskip("fast_simplification")
    density = blob_density([[0.0, 0.0, 0.0]], [0.6])
    full = extract_mesh(density, BOX, MeshConfig(resolution=64, target_faces=0))
    small = extract_mesh(density, BOX, MeshConfig(resolution=64, target_faces=2000))
    assert len(full.faces) > 2000 >= len(small.faces) > 1500
    assert chamfer_distance(full, small, n_samples=20_000)["symmetric"] < 0.01


def test_no_surface_is_a_clear_error():
    with pytest.raises(ValueError, match="no surface at density threshold 10.0.*densities range"):
        extract_mesh(lambda p: torch.zeros(p.shape[0]), BOX, SMALL)


def test_nan_density_is_treated_as_empty():
    base = blob_density([[0.0, 0.0, 0.0]], [0.5])

    def density(p):
        out = base(p)
        return torch.where(p[:, 0] > 0.8, torch.full_like(out, float("nan")), out)

    result = extract_mesh_with_stats(density, BOX, SMALL)
    assert np.isfinite(result.mesh.vertices).all() and len(result.mesh.faces) > 0
    assert result.stats["grid"]["density_nonfinite"] > 0


def test_input_frame_round_trip():
    R = Rotation.from_euler("xyz", [20, -35, 70], degrees=True).as_matrix()
    scale, t = 0.4, np.array([1.5, -2.0, 0.7])
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = scale * R, scale * t
    norm = Normalization(T, scale)
    centre_n = np.array([0.1, 0.2, -0.1])
    mesh_n = extract_mesh(blob_density([centre_n.tolist()], [0.5]), BOX, SMALL, color_fn=normal_colour)
    mesh_in = to_input_frame(mesh_n, norm)
    centre_in = norm.to_input_points(centre_n[None])[0]
    r = np.linalg.norm(mesh_in.vertices - centre_in, axis=1)
    assert np.allclose(r * scale, np.linalg.norm(mesh_n.vertices - centre_n, axis=1))
    assert np.allclose(r, 0.5 / scale, rtol=0.02)
    assert np.allclose(norm.to_normalized_points(mesh_in.vertices), mesh_n.vertices, atol=1e-9)
    assert mesh_in.volume > 0 and np.array_equal(mesh_in.visual.vertex_colors, mesh_n.visual.vertex_colors)
    # A reflecting transform flips the winding back so the mesh stays outward-facing.
    F = np.diag([-1.0, 1.0, 1.0, 1.0]) @ T
    assert to_input_frame(mesh_n, Normalization(F, scale)).volume > 0


def test_config_presets_and_errors():
    assert mesh_config(None) == MeshConfig()
    paper = mesh_config({"preset": "paper"})
    assert paper.resolution == 512 and paper.target_faces == 300_000 and paper.threshold == 10.0
    assert mesh_config({"preset": "paper", "resolution": 256}).resolution == 256
    with pytest.raises(ConfigError, match="resolutoin"):
        mesh_config({"resolutoin": 64})
    with pytest.raises(ValueError, match="mesh.slab"):
        MeshConfig(slab=0)


def test_face_visibility_projects_through_a_frames_distortion():
    # a floor larger than the view of one camera looking straight down at it
    floor = trimesh.creation.box(extents=[6.0, 6.0, 0.01])
    floor = floor.subdivide().subdivide().subdivide()
    f = 64 / 2 / math.tan(math.radians(30))
    camera = Camera(
        look_at(np.array([0.0, 0.0, 2.0]), np.zeros(3), np.array([0.0, 1.0, 0.0])),
        intrinsics_matrix(f, f, 32, 32),
        64,
        64,
    )
    barrel = Frame("v.png", camera, distortion={"k1": -0.3, "k2": 0.0, "k3": 0.0, "k4": 0.0, "p1": 0.0, "p2": 0.0})
    pinhole = Frame("v.png", camera)
    assert view_distortion(barrel) is barrel.distortion and view_distortion(camera) is None
    seen_pinhole = face_view_counts(floor, [camera])
    assert np.array_equal(face_view_counts(floor, [pinhole]), seen_pinhole)  # zero coefficients: a pinhole
    # barrel distortion pulls the image's edges inwards: the frame sees more of the floor than its bare camera
    seen_barrel = face_view_counts(floor, [barrel])
    assert seen_barrel.sum() > seen_pinhole.sum() and (seen_barrel >= seen_pinhole).all()
