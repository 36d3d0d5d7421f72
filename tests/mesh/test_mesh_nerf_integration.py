"""The mesh stage against the real :class:`san.models.nerf.NeRFModel` (file format, scene spaces,
radiance-field colours). The density is replaced by an analytic sphere so no training is needed."""

from __future__ import annotations

import json
import math

import numpy as np
import torch
import trimesh

from san.cameras import Camera, intrinsics_matrix, look_at
from san.data.scene import Frame, Normalization, Scene, save_scene
from san.encodings.config import HashGridConfig
from san.fields.config import NeRFFieldConfig
from san.fields.nerf_field import NeRFField
from san.mesh.chamfer import chamfer_distance
from san.mesh.config import MeshConfig
from san.mesh.from_nerf import (
    ColoredDensityModel,
    DensityModel,
    FieldRadianceModel,
    mesh_from_model,
    model_color_fn,
    model_grid_domain,
    surface_method,
    texture_from_model,
)
from san.models.base import RadianceModel
from san.models.config import NeRFConfig
from san.models.nerf import NeRFModel, save_nerf
from san.pipeline.extract_mesh import extract_mesh
from san.rendering.config import SamplerConfig
from san.rendering.samplers import SceneSpace, ndc_to_world, world_to_ndc

TINY = NeRFConfig(
    field=NeRFFieldConfig(
        grid=HashGridConfig(num_levels=2, log2_hashmap_size=10, max_resolution=32), hidden_dim=16, color_hidden_dim=16
    ),
    sampler=SamplerConfig(kind="uniform", num_samples=8),
    backend="torch",
)


def sphere_field(space: SceneSpace, centre, radius: float):
    """A replacement for ``NeRFField.density_and_features``: a world-space sphere of density 10 on
    its surface, whatever the scene space (grid-domain points are mapped back to the world)."""
    c = torch.tensor(centre, dtype=torch.float32)

    def density_and_features(self, x):
        if space.kind == "forward_facing":
            m = 1.0 + space.ndc_margin
            ndc = (x - 0.5) / x.new_tensor([0.5 / m, 0.5 / m, 0.5])
            world = ndc_to_world(ndc.double(), space.ndc_near, space.ndc_ax, space.ndc_ay).float()
        else:
            world = (x - 0.5) * 4.0  # inside the unit cube the contraction is the identity
        sdf = (world - c).norm(dim=-1) - radius
        sigma = 10.0 * torch.exp((-sdf / 0.02).clamp(max=30.0))
        return sigma, torch.zeros(x.shape[0], self.config.geo_feat_dim)

    return density_and_features


def ring_scene(norm: Normalization) -> Scene:
    f = 32 / 2 / math.tan(math.radians(30))
    K = intrinsics_matrix(f, f, 16, 16)
    frames = [
        Frame(
            f"v{k}.png",
            Camera(
                look_at(np.array([0.9 * math.cos(a), 0.9 * math.sin(a), 0.3]), np.zeros(3), np.array([0.0, 0.0, 1.0])),
                K,
                32,
                32,
            ),
        )
        for k, a in enumerate(np.linspace(0, 2 * math.pi, 8, endpoint=False))
    ]
    return Scene(tuple(frames), "unbounded", 0.05, 1000.0, norm)


def test_stage_with_a_saved_nerf_model(tmp_path, monkeypatch):
    space = SceneSpace("unbounded", 0.05, 1000.0)
    monkeypatch.setattr(NeRFField, "density_and_features", sphere_field(space, [0.1, 0.0, 0.05], 0.3))
    model = NeRFModel(TINY, space, "cpu")
    save_nerf(model, tmp_path / "model.pt")
    T = np.diag([2.0, 2.0, 2.0, 1.0])
    T[:3, 3] = [0.2, -0.4, 0.0]
    norm = Normalization(T, 2.0)
    save_scene(ring_scene(norm), tmp_path / "cameras.json")

    record = extract_mesh(
        tmp_path / "model.pt",
        tmp_path / "cameras.json",
        tmp_path / "mesh",
        MeshConfig(method="density", resolution=64, texture_refine_steps=0),
        "cpu",
    )
    assert record["grid"]["domain"] == "world" and record["grid"]["bbox_min"] == [-1.0, -1.0, -1.0]
    assert record["grid"]["method"] == "density"
    assert record["colors"] is True
    mesh_n = trimesh.load(tmp_path / "mesh" / "mesh_normalized.ply", force="mesh")
    gt = trimesh.creation.icosphere(subdivisions=4, radius=0.3)
    gt.apply_translation([0.1, 0.0, 0.05])
    assert chamfer_distance(mesh_n, gt, 20_000)["symmetric"] < 0.01
    mesh_in = trimesh.load(tmp_path / "mesh" / "mesh.ply", force="mesh")
    assert np.allclose(mesh_in.vertices, norm.to_input_points(mesh_n.vertices), atol=1e-5)
    on_disk = json.loads((tmp_path / "mesh" / "mesh.json").read_text())
    assert on_disk["faces"] == len(mesh_in.faces)
    # a real NeRFModel renders rays: the texture is baked along training-camera rays
    assert on_disk["texture"]["view"] == "train_ray"
    assert (
        on_disk["texture"]["texels_short_ray"]
        == on_disk["texture"]["texels_hidden_from_every_camera"]
        < on_disk["texture"]["texels_baked"]
    )
    assert (tmp_path / "mesh" / "mesh_textured.glb").is_file()


def test_tsdf_of_the_rendered_depth_recovers_the_sphere(monkeypatch):
    space = SceneSpace("unbounded", 0.05, 1000.0)
    centre, radius = np.array([0.1, 0.0, 0.05]), 0.3
    monkeypatch.setattr(NeRFField, "density_and_features", sphere_field(space, centre.tolist(), radius))
    fine = NeRFConfig(field=TINY.field, sampler=SamplerConfig(kind="uniform", num_samples=256), backend="torch")
    model = NeRFModel(fine, space, "cpu").eval()
    config = MeshConfig(method="tsdf", resolution=64, tsdf_image_size=32, target_faces=0, colors=False)
    result = mesh_from_model(model, ring_scene(Normalization.identity()), config)
    assert result.stats["grid"]["method"] == "tsdf" and result.stats["grid"]["threshold"] == 0.0
    assert result.stats["grid"]["tsdf_depth_maps"] == [8, 32, 32]
    assert result.stats["timings_s"]["depth_render"] > 0
    mesh = result.mesh
    d = np.linalg.norm(mesh.vertices - centre, axis=1)
    voxel = 2.0 / 63
    # the rendered depth (opacity 0.3 along 256 samples) puts the surface within about a voxel
    assert np.abs(d - radius).mean() < voxel and np.percentile(np.abs(d - radius), 95) < 2 * voxel
    outward = np.einsum("ij,ij->i", mesh.face_normals, mesh.triangles_center - centre)
    assert (outward > 0).mean() > 0.95


def test_forward_facing_model_is_meshed_on_an_ndc_grid(monkeypatch):
    space = SceneSpace("forward_facing", 1.0, 12.0, ndc_near=1.0, ndc_ax=1.2, ndc_ay=1.2, ndc_margin=0.1)
    centre, radius = [0.2, -0.1, 3.0], 0.6
    monkeypatch.setattr(NeRFField, "density_and_features", sphere_field(space, centre, radius))
    model = NeRFModel(TINY, space, "cpu")
    domain = model_grid_domain(model)
    assert np.allclose(domain.bbox, [[-1.1, -1.1, -1.0], [1.1, 1.1, 1.0 - 2.0 / 12.0]])
    g = torch.tensor([[0.3, -0.2, 0.1], [-0.9, 0.5, 0.7]], dtype=torch.float64)
    assert torch.allclose(domain.to_grid(domain.to_world(g)), g, atol=1e-9)

    f = 0.6 * 32  # ax = 2 f / W = 1.2
    K = intrinsics_matrix(f, f, 16, 16)
    frames = tuple(
        Frame(
            f"v{k}.png",
            Camera(look_at(np.array([x, 0.0, 0.0]), np.array([x, 0.0, 1.0]), np.array([0.0, -1.0, 0.0])), K, 32, 32),
        )
        for k, x in enumerate((-0.1, 0.1))
    )
    scene = Scene(frames, "forward_facing", 1.0, 12.0, Normalization.identity())
    result = mesh_from_model(model, scene, MeshConfig(resolution=96, target_faces=0))  # method tsdf asked
    assert result.stats["grid"]["domain"] == "ndc"
    assert result.stats["grid"]["method"] == "density"  # forward-facing: tsdf falls back to the density
    mesh = result.mesh
    d = np.linalg.norm(mesh.vertices - np.array(centre), axis=1)
    # Close to the world sphere after the NDC -> world map (NDC voxels are ~0.1 deep at z = 3.6).
    assert np.abs(d - radius).mean() < 0.03 and np.abs(d - radius).max() < 0.12
    outward = np.einsum("ij,ij->i", mesh.face_normals, mesh.triangles_center - np.array(centre))
    assert (outward > 0).mean() > 0.99
    assert mesh.visual.kind == "vertex"
    # the texture bake works on the NDC model too (world rays through the model's own sampler)
    textured = texture_from_model(
        model, scene, mesh, MeshConfig(texture_size=64, target_faces=0, texture_refine_steps=0)
    )
    assert textured.stats["view"] == "train_ray" and textured.stats["coverage"] > 0.05
    assert textured.stats["faces_unseen"] < len(mesh.faces)


def test_world_to_ndc_round_trip():
    p = torch.tensor([[0.3, -0.4, 2.5], [1.0, 2.0, 7.0]], dtype=torch.float64)
    assert torch.allclose(ndc_to_world(world_to_ndc(p, 1.0, 1.3, 0.9), 1.0, 1.3, 0.9), p, atol=1e-9)


class Blob(DensityModel):
    """A density and a box, nothing more (no colour, no rays)."""

    def density(self, points: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.exp(((0.5 - points.norm(dim=-1)) / 0.05).clamp(max=30.0))

    def bounding_box(self) -> np.ndarray:
        return np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])


def test_models_are_told_apart_by_their_declared_types():
    nerf = NeRFModel(TINY, SceneSpace("unbounded", 0.05, 1000.0), "cpu")
    # the real model satisfies every protocol the mesh stage dispatches on, except a stand-in's own colour
    assert isinstance(nerf, FieldRadianceModel) and isinstance(nerf, RadianceModel) and isinstance(nerf, DensityModel)
    assert not isinstance(nerf, ColoredDensityModel)
    tsdf = MeshConfig(method="tsdf")
    assert surface_method(nerf, tsdf) == "tsdf"
    blob = Blob()
    assert not isinstance(blob, RadianceModel) and not isinstance(blob, ColoredDensityModel)
    domain = model_grid_domain(blob)
    assert domain.to_world is None and np.array_equal(domain.bbox, blob.bounding_box())
    assert model_color_fn(blob, domain, 0.1) is None  # no colours
    assert surface_method(blob, tsdf) == "density"  # renders no rays: tsdf falls back
    result = mesh_from_model(blob, ring_scene(Normalization.identity()), MeshConfig(resolution=32, target_faces=0))
    assert result.stats["grid"]["method"] == "density" and result.mesh.visual.kind is None
