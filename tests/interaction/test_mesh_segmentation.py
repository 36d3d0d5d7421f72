"""Mesh segmentation: z-buffer, visibility-aware mask projection, vote, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import trimesh

from san.cameras import generate_rays
from san.data.scene import Normalization
from san.interaction.mesh_segmentation import (
    MeshSegmenter,
    export_segmentation,
    observe_faces,
    rasterize_faces,
    select_faces,
    split_mesh,
)


def brute_force_hits(mesh, c2w, K, W, H):
    """Nearest face and distance per pixel by testing every ray against every face (float64)."""
    rays = generate_rays(torch.as_tensor(c2w), torch.as_tensor(K), W, H)
    o, d = rays.origins.numpy(), rays.directions.numpy()
    tris = np.asarray(mesh.triangles)
    v0, e1, e2 = tris[:, 0], tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]
    face, depth = np.full(len(o), -1), np.full(len(o), np.inf)
    for i in range(len(o)):
        p = np.cross(d[i], e2)
        det = (e1 * p).sum(1)
        tv = o[i] - v0
        with np.errstate(divide="ignore", invalid="ignore"):
            u = (tv * p).sum(1) / det
            q = np.cross(tv, e1)
            v = (q @ d[i]) / det
            t = (e2 * q).sum(1) / det
        ok = (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
        if ok.any():
            j = np.flatnonzero(ok)[np.argmin(t[ok])]
            face[i], depth[i] = j, t[j]
    return face.reshape(H, W), depth.reshape(H, W)


def test_rasterizer_matches_brute_force(make_camera):
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    box = trimesh.creation.box(extents=(0.6, 0.6, 0.6))
    box.apply_translation((0.3, 0.2, 1.2))
    mesh = trimesh.util.concatenate([sphere, box])
    c2w, K, W, H = make_camera((1.0, -0.5, 4.0), width=40, height=30, f=40.0)
    raster = rasterize_faces(mesh.vertices, mesh.faces, c2w, K, W, H, max_candidates=500)  # many batches
    face, depth = brute_force_hits(mesh, c2w, K, W, H)
    same = raster.face_ids.numpy() == face
    # Pixels on a shared edge may pick either neighbour; they are at the same depth.
    assert same.mean() > 0.99
    hit = np.isfinite(depth)
    assert np.array_equal(hit, raster.face_ids.numpy() >= 0)
    assert np.abs(raster.depth.numpy()[hit] - depth[hit]).max() < 1e-4
    assert np.isinf(raster.depth.numpy()[~hit]).all()


def test_face_crossing_the_camera_plane_is_drawn(make_camera):
    # A large ground triangle fan extending behind the camera (the demo's ground disk).
    c2w, K, W, H = make_camera((0.0, -3.0, 1.0), target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0))
    v = np.array([[0.0, 0.0, 0.0], [20.0, -20.0, 0.0], [0.0, 20.0, 0.0], [-20.0, -20.0, 0.0]])
    mesh = trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3], [0, 3, 1]], process=False)
    raster = rasterize_faces(mesh.vertices, mesh.faces, c2w, K, W, H)
    face, depth = brute_force_hits(mesh, c2w, K, W, H)
    assert np.array_equal(raster.face_ids.numpy() >= 0, face >= 0)
    assert (face >= 0).mean() > 0.4  # the lower part of the image sees the ground
    hit = face >= 0
    assert np.allclose(raster.depth.numpy()[hit], depth[hit], rtol=1e-4)


def test_mask_projects_onto_visible_faces(make_square, make_camera):
    plane = make_square(2.0, 0.0, subdivisions=3)  # 128 faces
    c2w, K, W, H = make_camera((0.0, 0.0, 3.0))
    mask = torch.zeros(H, W, dtype=torch.bool)
    mask[:, : W // 2] = True  # left half of the image = x < 0 in the world (camera x = world x)
    obs = observe_faces(plane.vertices, plane.faces, mask, c2w, K)
    centroids = plane.triangles_center
    assert obs.visible.all()
    left = centroids[:, 0] < -0.05
    right = centroids[:, 0] > 0.05
    assert obs.inside.numpy()[left].all() and not obs.inside.numpy()[right].any()


def test_occluded_faces_get_no_label(make_square, make_camera):
    back = make_square(1.0, 0.0, subdivisions=2)
    front = make_square(1.6, 1.0)  # larger square above: hides all of ``back`` from a top view
    mesh = trimesh.util.concatenate([back, front])
    n_back = len(back.faces)
    c2w, K, W, H = make_camera((0.0, 0.0, 4.0))
    full = torch.ones(H, W, dtype=torch.bool)
    seg = MeshSegmenter.from_trimesh(mesh)
    obs = seg.add_view(full, c2w, K)
    assert not obs.visible[:n_back].any() and not obs.inside[:n_back].any()
    assert obs.visible[n_back:].all() and obs.inside[n_back:].all()
    assert seg.visible_count[:n_back].sum() == 0
    assert not seg.selected()[:n_back].any() and seg.selected()[n_back:].all()


def test_subpixel_faces_are_seen_through_their_centroid(make_camera):
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.3)  # 5120 faces, ~1/4 px each
    c2w, K, W, H = make_camera((0.0, 0.0, 5.0))
    mask = torch.ones(H, W, dtype=torch.bool)
    obs = observe_faces(sphere.vertices, sphere.faces, mask, c2w, K)
    facing = sphere.face_normals[:, 2] > 0.5
    assert obs.visible.numpy()[facing].mean() > 0.98
    assert (obs.pixels.numpy()[facing] == 0).mean() > 0.5  # most of them own no pixel centre
    assert not obs.visible.numpy()[sphere.face_normals[:, 2] < -0.3].any()  # far side hidden


def test_vote():
    visible = torch.tensor([0, 1, 2, 2, 3, 3, 4])
    inside = torch.tensor([0, 1, 1, 0, 1, 2, 2])
    assert select_faces(visible, inside).tolist() == [False, True, True, False, False, True, True]
    assert select_faces(visible, inside, vote_threshold=0.6).tolist() == [False, True, False, False, False, True, False]
    assert select_faces(visible, inside, min_views=2).tolist() == [False, False, True, False, False, True, True]


def test_vote_over_views(make_square, make_camera):
    plane = make_square(2.0, 0.0, subdivisions=3)
    c2w, K, W, H = make_camera((0.0, 0.0, 3.0))
    left = torch.zeros(H, W, dtype=torch.bool)
    left[:, : W // 2] = True
    everything = torch.ones(H, W, dtype=torch.bool)
    nothing = torch.zeros(H, W, dtype=torch.bool)
    seg = MeshSegmenter.from_trimesh(plane)
    seg.add_view(everything, c2w, K)
    seg.add_view(left, c2w, K)
    seg.add_view(nothing, c2w, K)
    assert seg.views == 3 and seg.visible_count.eq(3).all()
    x = plane.triangles_center[:, 0]
    sel = seg.selected().numpy()
    assert sel[x < -0.05].all() and not sel[x > 0.05].any()  # left: 2 of 3 views; right: 1 of 3
    with pytest.raises(ValueError, match="vote_threshold"):
        MeshSegmenter.from_trimesh(plane, vote_threshold=0.0)


def test_export_ply_glb_counts_and_frames(tmp_path, make_square):
    mesh = make_square(2.0, 0.0, subdivisions=2)  # 32 faces
    selected = torch.zeros(len(mesh.faces), dtype=torch.bool)
    selected[:10] = True
    transform = np.eye(4)
    transform[:3, :3] *= 2.0
    transform[:3, 3] = (1.0, 0.0, 0.0)
    norm = Normalization(transform, 2.0)  # x_n = 2 x_in + (1, 0, 0)
    exp = export_segmentation(mesh, selected, tmp_path / "out", normalization=norm)
    assert exp.segment_faces == 10 and exp.rest_faces == 22 and exp.frame == "input"
    seg = trimesh.load(exp.segment_ply, force="mesh", process=False)
    rest = trimesh.load(exp.rest_ply, force="mesh", process=False)
    assert len(seg.faces) + len(rest.faces) == len(mesh.faces)
    for path in (exp.segment_glb, exp.rest_glb):
        glb = trimesh.load(path, force="mesh", process=False)
        assert len(glb.faces) in (10, 22)
        assert glb.visual.kind == "vertex"
    # Input frame: normalised vertices mapped back with the inverse similarity.
    expected = norm.to_input_points(np.asarray(mesh.vertices))
    assert np.allclose(
        np.unique(np.round(np.vstack([seg.vertices, rest.vertices]), 6), axis=0),
        np.unique(np.round(expected, 6), axis=0),
    )
    summary = json.loads(exp.summary.read_text())
    assert summary["total_faces"] == 32 and summary["frame"] == "input"
    normalized = export_segmentation(mesh, selected, tmp_path / "n", normalization=norm, frame="normalized")
    seg_n = trimesh.load(normalized.segment_ply, force="mesh", process=False)
    assert np.allclose(
        np.unique(np.round(seg_n.vertices, 6), axis=0),
        np.unique(np.round(np.asarray(mesh.vertices)[np.unique(mesh.faces[:10])], 6), axis=0),
    )


def test_split_mesh_keeps_vertex_colours(make_square):
    mesh = make_square(2.0, 0.0, subdivisions=1)
    mesh.visual.vertex_colors = np.tile([10, 20, 30, 255], (len(mesh.vertices), 1))
    seg, rest = split_mesh(mesh, np.arange(len(mesh.faces)) < 3)
    assert len(seg.faces) == 3 and len(rest.faces) == len(mesh.faces) - 3
    assert (seg.visual.vertex_colors[:, :3] == [10, 20, 30]).all()
    with pytest.raises(ValueError, match="faces"):
        split_mesh(mesh, np.zeros(3, dtype=bool))
