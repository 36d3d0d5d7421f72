"""Rule ``extract_mesh`` end to end with a stand-in NeRF (an analytic density), so no training is needed."""

from __future__ import annotations

import json
import math
import sys
import types

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial.transform import Rotation

from san.cameras import Camera, intrinsics_matrix, look_at
from san.data.scene import Frame, Normalization, Scene, save_scene
from san.mesh.config import MeshConfig
from san.mesh.from_nerf import ColoredDensityModel
from san.pipeline.extract_mesh import extract_mesh

SPHERE_C, SPHERE_R = np.array([0.2, -0.1, 0.5]), 0.5
REGION = [[-1.2, -1.2, -0.05], [1.2, 1.2, 1.2]]


def make_normalization() -> Normalization:
    scale = 0.6
    T = np.eye(4)
    T[:3, :3] = scale * Rotation.from_euler("zyx", [40, 15, -25], degrees=True).as_matrix()
    T[:3, 3] = scale * np.array([0.3, -0.4, 0.2])
    return Normalization(T, scale)


class StandInNeRF(ColoredDensityModel):
    """A sphere resting on a ground half-space, defined in the *input* frame and queried in the
    normalised frame like a real NeRF: a :class:`~san.mesh.from_nerf.ColoredDensityModel` (``density``,
    ``bounding_box``, ``color``), not a :class:`~san.models.base.RadianceModel` (it renders no rays)."""

    def __init__(self, norm: Normalization):
        self.inv = torch.as_tensor(norm.inverse, dtype=torch.float32)
        corners = np.array([[x, y, z] for x in (-1.6, 1.6) for y in (-1.6, 1.6) for z in (-0.4, 1.6)])
        c = norm.to_normalized_points(corners)
        self.box = torch.tensor(np.stack([c.min(0), c.max(0)]), dtype=torch.float32)

    def eval(self):
        return self

    def _input(self, p: torch.Tensor) -> torch.Tensor:
        return p @ self.inv[:3, :3].T + self.inv[:3, 3]

    def density(self, p: torch.Tensor) -> torch.Tensor:
        x = self._input(p)
        sphere = (SPHERE_R - (x - torch.tensor(SPHERE_C, dtype=x.dtype)).norm(dim=-1)) / 0.03
        ground = -x[:, 2] / 0.03
        return 10.0 * torch.exp(torch.maximum(sphere, ground).clamp(max=30.0))

    def bounding_box(self) -> torch.Tensor:
        return self.box

    def color(self, p: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        x = self._input(p)
        red = ((x - torch.tensor(SPHERE_C, dtype=x.dtype)).norm(dim=-1) < SPHERE_R + 0.05).float()
        return torch.stack([red, 0.5 * torch.ones_like(red), 1 - red], dim=-1)


def make_scene(norm: Normalization) -> Scene:
    size, f = 48, 48 / 2 / math.tan(math.radians(30))
    K = intrinsics_matrix(f, f, size / 2, size / 2)
    frames = []
    for k in range(12):
        a = 2 * math.pi * k / 12
        eye = np.array([3.5 * math.cos(a), 3.5 * math.sin(a), 1.8])
        c2w = norm.to_normalized_c2w(look_at(eye, np.array([0.0, 0.0, 0.3]), np.array([0.0, 0.0, 1.0])))
        frames.append(
            Frame(image=f"view_{k:03d}.png", camera=Camera(c2w, K, size, size), split="train" if k % 4 else "test")
        )
    return Scene(tuple(frames), "unbounded", 0.05, 3.0, norm)


@pytest.fixture()
def stage_inputs(tmp_path, monkeypatch):
    norm = make_normalization()
    save_scene(make_scene(norm), tmp_path / "cameras.json")
    fake = types.ModuleType("san.models.nerf")
    fake.load_nerf = lambda path, device: StandInNeRF(norm)
    monkeypatch.setitem(sys.modules, "san.models.nerf", fake)
    gt = tmp_path / "gt"
    (gt / "meshes").mkdir(parents=True)
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=SPHERE_R)
    sphere.apply_translation(SPHERE_C)
    sphere.export(gt / "meshes" / "sphere.ply")
    ground = trimesh.Trimesh([[-3, -3, 0], [3, -3, 0], [3, 3, 0], [-3, 3, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
    ground.export(gt / "meshes" / "ground.ply")
    (gt / "scene_gt.json").write_text(json.dumps({"region_of_interest": REGION}))
    return tmp_path, norm, gt


def test_stage_writes_meshes_in_both_frames_and_passes_the_chamfer_bar(stage_inputs):
    tmp, norm, gt = stage_inputs
    out = tmp / "results" / "demo" / "toy" / "mesh"
    config = MeshConfig(
        resolution=64, target_faces=20_000, chamfer_samples=30_000, texture_size=128, texture_refine_steps=0
    )  # no photos
    record = extract_mesh(tmp / "model.pt", tmp / "cameras.json", out, config, "cpu", gt)

    names = {p.name for p in out.iterdir()}
    textured = {"mesh_textured.glb", "mesh_textured.obj", "mesh_textured.mtl", "mesh_textured.png", "mesh_atlas.npz"}
    assert (
        names == {"mesh.ply", "mesh.glb", "mesh_normalized.ply", "mesh.json", "chamfer.json"} | textured
    )  # no temporaries left
    assert all((out / "mesh.json").stat().st_mtime_ns >= (out / n).stat().st_mtime_ns for n in names)
    on_disk = json.loads((out / "mesh.json").read_text())
    assert on_disk["faces"] == record["faces"] <= 20_000
    assert list(on_disk["counts"]) == ["marching_cubes", "visibility", "components", "region", "pieces", "decimation"]
    assert on_disk["counts"]["marching_cubes"]["faces"] >= on_disk["counts"]["visibility"]["faces"] >= on_disk["faces"]
    assert {"marching_cubes", "visibility", "components", "decimation", "colors", "export", "chamfer"} <= set(
        on_disk["timings_s"]
    )
    assert on_disk["files"]["mesh.ply"] == "input" and on_disk["files"]["mesh_normalized.ply"] == "normalized"
    assert on_disk["files"]["mesh.glb"] == on_disk["files"]["mesh_textured.glb"] == "gltf_y_up"
    assert on_disk["files"]["mesh_textured.obj"] == "input"
    clean = on_disk["clean"]
    assert clean["region"] == "cameras" and clean["pieces"] >= 1 and clean["pieces_over_1pct"] <= 10
    assert clean["area_outside_object_region"] >= 0
    assert (
        on_disk["texture"]["coverage"] > 0 and on_disk["texture"]["view"] == "mean_train_view"
    )  # stand-in: not a RadianceModel, renders no rays
    assert on_disk["scene_up_input"] is not None and np.allclose(on_disk["scene_up_input"], [0, 0, 1], atol=0.05)
    scene_chamfer = on_disk["chamfer"]["scene"]
    assert scene_chamfer["chamfer_fraction"] < 0.05 and scene_chamfer["n_samples_gt"] > 0
    assert on_disk["colors"] is True

    chamfer = json.loads((out / "chamfer.json").read_text())
    assert chamfer == on_disk["chamfer"]
    assert chamfer["passed"] and chamfer["chamfer_fraction"] < 0.02
    assert chamfer["ground_truth"] == ["ground", "sphere"]

    mesh_in = trimesh.load(out / "mesh.ply", force="mesh")
    mesh_n = trimesh.load(out / "mesh_normalized.ply", force="mesh")
    glb = trimesh.load(out / "mesh.glb", force="mesh")
    assert np.isfinite(mesh_in.vertices).all() and len(glb.faces) == len(mesh_in.faces) == record["faces"]
    # the GLB is +Y up: the input frame's +Z (the scene up) becomes +Y, no scale, no shift
    R = np.array(on_disk["scene_up_input"])
    assert np.allclose(np.sort(glb.vertices @ [0, 1, 0])[[0, -1]], np.sort(mesh_in.vertices @ R)[[0, -1]], atol=1e-4)
    textured_glb = trimesh.load(out / "mesh_textured.glb", force="mesh")
    assert textured_glb.visual.kind == "texture" and len(textured_glb.faces) == record["faces"]
    assert np.allclose(norm.to_input_points(mesh_n.vertices), mesh_in.vertices, atol=1e-5)
    # In the input frame the sphere is where the ground truth puts it, and it is red.
    d = np.linalg.norm(mesh_in.vertices - SPHERE_C, axis=1)
    on_sphere = (np.abs(d - SPHERE_R) < 0.03) & (mesh_in.vertices[:, 2] > 0.2)
    assert on_sphere.sum() > 100
    assert (mesh_in.visual.vertex_colors[on_sphere, 0] > 200).mean() > 0.95
    assert (
        glb.visual.vertex_colors[:, :3].astype(int).mean(0) - mesh_in.visual.vertex_colors[:, :3].mean(0)
    ).__abs__().max() < 1


def test_stage_names_a_bad_ground_truth_folder(stage_inputs):
    tmp, _, _ = stage_inputs
    with pytest.raises(FileNotFoundError, match="scene_gt.json"):
        extract_mesh(
            tmp / "model.pt", tmp / "cameras.json", tmp / "out", MeshConfig(resolution=32), "cpu", tmp / "nowhere"
        )
    assert not (tmp / "out" / "mesh.json").exists()


def test_mesh_files_textured_outputs_must_share_one_folder(tmp_path):
    from san.pipeline.extract_mesh import TEXTURED_OUTPUTS, MeshFiles

    files = MeshFiles.in_folder(tmp_path / "mesh")
    assert files.textured_folder() == tmp_path / "mesh" and files.summary == tmp_path / "mesh" / "mesh.json"
    moved = {**files.textured, "textured_png": tmp_path / "elsewhere" / TEXTURED_OUTPUTS["textured_png"]}
    with pytest.raises(ValueError, match="one folder"):
        MeshFiles(files.ply, files.glb, files.normalized, files.summary, moved).textured_folder()
    with pytest.raises(ValueError, match="atlas"):
        MeshFiles(files.ply, files.glb, files.normalized, files.summary, {"textured_glb": files.glb}).textured_folder()


def test_mesh_files_from_declared_outputs(tmp_path):
    from san.pipeline.extract_mesh import MeshFiles

    usual = MeshFiles.in_folder(tmp_path, texture=False)
    outputs = {"ply": usual.ply, "glb": usual.glb, "normalized": usual.normalized, "summary": usual.summary}
    assert MeshFiles.from_outputs(outputs) == usual
    with_texture = MeshFiles.in_folder(tmp_path)
    assert MeshFiles.from_outputs({**outputs, **with_texture.textured}) == with_texture
