"""Mesh files for other tools: GLB (+Y up, normals, provenance), OBJ + MTL + PNG, PLY.

Frames (what a user opening the files gets):

* **PLY and OBJ: the input frame.** Vertices are in the capture's own coordinates (the frame of the
  source poses: COLMAP / LLFF / ``transforms.json``), unchanged, so they line up with the user's
  cameras and point clouds. Neither format declares an up axis.
* **GLB: glTF's frame, +Y up.** glTF 2.0 defines ``+Y`` as up (and ``+Z`` as the front; metres).
  The input frame's *scene up*, the average camera up (OpenCV ``-y`` column of the training
  cameras' ``c2w``, :func:`scene_up`), is rotated onto ``+Y`` by the smallest rotation
  (:func:`gltf_rotation`; for a ``+Z``-up capture that is ``(x, y, z) -> (x, z, -y)``, the same as
  Blender's glTF exporter). No scale or shift is applied, so input-frame coordinates are
  ``R^T p_gltf``; the rotation is stored in ``asset.extras.input_frame_from_gltf``.
  Every GLB carries vertex normals and, in ``asset.extras``, its provenance: ``source_scene``,
  ``stage``, ``teacher`` and ``untrained`` (when a teacher was involved), and the frame note.

Textured meshes (:class:`~san.mesh.texture.TexturedMesh`) are written with trimesh: GLB with a
``pbrMetallicRoughness.baseColorTexture`` (PNG inside the GLB), OBJ with ``mtllib`` / ``map_Kd``
pointing to ``{stem}.mtl`` / ``{stem}.png`` beside it. Every file is written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import trimesh

from san.utils.io import atomic_path

GLTF_UP = np.array([0.0, 1.0, 0.0])


def scene_up(frames: Sequence[Any], normalization=None) -> np.ndarray:
    """Unit up vector of the capture in the input frame: the normalised sum of the cameras' up
    directions (``-c2w[:3, 1]``, OpenCV), the same rule ``prepare_poses`` uses.

    Args:
        frames: cameras with ``c2w 4x4`` (e.g. :class:`san.data.scene.Frame`), in the normalised
            frame when ``normalization`` is given (then mapped to the input frame), else input frame.
    """
    c2w = np.stack([np.asarray(f.c2w, dtype=np.float64) for f in frames])
    if normalization is not None:
        c2w = normalization.to_input_c2w(c2w)
    up = -c2w[:, :3, 1].sum(axis=0)
    norm = np.linalg.norm(up)
    if norm < 1e-9:
        raise ValueError("scene_up: the cameras' up directions cancel out; no scene up")
    return up / norm


def gltf_rotation(up) -> np.ndarray:
    """``3x3`` rotation taking the unit vector ``up`` onto glTF's ``+Y`` by the smallest angle
    (Rodrigues; a half turn about ``+X`` when ``up`` is ``-Y``)."""
    u = np.asarray(up, dtype=np.float64)
    u = u / np.linalg.norm(u)
    v = np.cross(u, GLTF_UP)
    c = float(u @ GLTF_UP)
    if c < -1 + 1e-12:
        return np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def _rotated(mesh: trimesh.Trimesh, R: np.ndarray) -> trimesh.Trimesh:
    out = mesh.copy()
    T = np.eye(4)
    T[:3, :3] = R
    out.apply_transform(T)  # rotation: winding and normals stay consistent
    return out


def unit_vertex_normals(mesh: trimesh.Trimesh) -> np.ndarray:
    """``Vx3`` unit vertex normals (trimesh's area-weighted ones). glTF requires unit ``NORMAL``s;
    a vertex used only by zero-area faces, or by none (both occur in decimated marching-cubes
    meshes: 410 such vertices in the demo's mesh), has no normal, and gets ``+Y`` instead."""
    n = np.array(mesh.vertex_normals, dtype=np.float64)
    length = np.linalg.norm(n, axis=1)
    bad = ~np.isfinite(length) | (length < 0.5)
    n[bad] = GLTF_UP
    n[~bad] /= length[~bad, None]
    return n


def write_glb(mesh: trimesh.Trimesh, path: str | os.PathLike, up=None, provenance: dict | None = None) -> np.ndarray:
    """Write ``mesh`` (input frame) as GLB, +Y up, with normals and ``asset.extras`` (module docstring),
    atomically: :func:`glb_bytes` written to ``path``; returns the ``3x3`` rotation applied."""
    data, R = glb_bytes(mesh, up, provenance)
    with atomic_path(Path(path)) as tmp:
        Path(tmp).write_bytes(data)
    return R


def glb_bytes(mesh: trimesh.Trimesh, up=None, provenance: dict | None = None) -> tuple[bytes, np.ndarray]:
    """``mesh`` (input frame) encoded as GLB in memory, +Y up, with normals and ``asset.extras``.

    Args:
        mesh: vertex-coloured or textured ``trimesh.Trimesh`` in the input frame.
        up: the input frame's scene up (:func:`scene_up`); ``None`` keeps the input frame's axes as
            they are, and ``asset.extras.frame`` says so.
        provenance: extra ``asset.extras`` entries (``source_scene``, ``stage``, ``teacher``, ...).

    Returns:
        ``(data, R)``: the GLB bytes and the ``3x3`` rotation applied (identity when ``up`` is None).
    """
    R = np.eye(3) if up is None else gltf_rotation(up)
    out = _rotated(mesh, R)
    out.vertex_normals = unit_vertex_normals(out)
    extras = {
        **(provenance or {}),
        "frame": (
            "glTF +Y up: the input frame (capture's coordinates) rotated so that the scene up "
            f"{np.round(np.asarray(up, dtype=float), 6).tolist()} is +Y; input = input_frame_from_gltf @ gltf"
            if up is not None
            else "the input frame's axes unchanged (no scene up known)"
        ),
        "input_frame_from_gltf": R.T.tolist(),
    }

    def add_extras(tree: dict) -> None:
        tree.setdefault("asset", {"version": "2.0"})
        tree["asset"]["extras"] = extras
        # bufferView.target for vertex / index data (the validator's hint; trimesh leaves it unset)
        views = tree.get("bufferViews", [])
        accessors = tree.get("accessors", [])
        for m in tree.get("meshes", []):
            for prim in m.get("primitives", []):
                targets = [(a, 34962) for a in prim.get("attributes", {}).values()]
                if "indices" in prim:
                    targets.append((prim["indices"], 34963))
                for acc, target in targets:
                    view = accessors[acc].get("bufferView")
                    if view is not None:
                        views[view]["target"] = target

    data = trimesh.exchange.gltf.export_glb(out.scene(), include_normals=True, tree_postprocessor=add_extras)
    return data, R


def write_obj(mesh: trimesh.Trimesh, path: str | os.PathLike) -> list[Path]:
    """Write a textured mesh as ``{stem}.obj`` + ``{stem}.mtl`` + ``{stem}.png`` (input frame).

    Returns:
        The three paths written (OBJ last, so an OBJ on disk has its material beside it).

    Raises:
        ValueError: the mesh has no texture: its visual is not a ``trimesh.visual.TextureVisuals`` whose
            material is a ``SimpleMaterial`` with an image (as :func:`~san.mesh.texture.textured_trimesh`
            builds; a glTF ``PBRMaterial`` is not written).
    """
    path = Path(path)
    visual = mesh.visual
    material = visual.material if isinstance(visual, trimesh.visual.TextureVisuals) else None
    image = material.image if isinstance(material, trimesh.visual.material.SimpleMaterial) else None
    if image is None:
        raise ValueError(f"{path}: write_obj needs a textured mesh (TextureVisuals with an image)")
    stem = path.stem
    # Name the material files ourselves: trimesh names the texture after the material otherwise.
    mesh = mesh.copy()
    mesh.visual.material.name = stem
    text, files = trimesh.exchange.obj.export_obj(
        mesh, include_normals=True, return_texture=True, mtl_name=f"{stem}.mtl"
    )
    written = []
    png_names = [n for n in files if n.lower().endswith(".png")]
    mtl = files.get(f"{stem}.mtl", b"").decode("utf-8")
    for name in png_names:
        mtl = mtl.replace(name, f"{stem}.png")
    with atomic_path(path.with_name(f"{stem}.png")) as tmp:
        image.save(tmp, format="PNG")
    written.append(path.with_name(f"{stem}.png"))
    with atomic_path(path.with_name(f"{stem}.mtl")) as tmp:
        Path(tmp).write_text(mtl)
    written.append(path.with_name(f"{stem}.mtl"))
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    written.append(path)
    return written


def write_ply(mesh: trimesh.Trimesh, path: str | os.PathLike) -> None:
    """PLY in the mesh's own frame (vertex colours kept), atomically."""
    with atomic_path(Path(path)) as tmp:
        mesh.export(tmp, file_type="ply")


def write_textured(
    mesh: trimesh.Trimesh, out_dir: str | os.PathLike, stem: str, up=None, provenance: dict | None = None
) -> dict[str, str]:
    """``{stem}.glb`` (+Y up) and ``{stem}.obj/.mtl/.png`` (input frame) of a textured mesh.

    Returns:
        ``{file name: frame}`` of the files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_glb(mesh, out / f"{stem}.glb", up, provenance)
    files = {f"{stem}.glb": "gltf_y_up" if up is not None else "input"}
    for p in write_obj(mesh, out / f"{stem}.obj"):
        files[p.name] = "input"
    return files


TEXTURED_STEM = "mesh_textured"
ATLAS_FILE = "mesh_atlas.npz"


def write_textured_scene(
    textured, normalization, out_dir: str | os.PathLike, up=None, provenance: dict | None = None
) -> dict[str, str]:
    """The textured scene mesh of rule ``extract_mesh``: ``mesh_textured.glb`` (+Y up) and
    ``mesh_textured.obj/.mtl/.png`` (input frame), plus ``mesh_atlas.npz``, the UV atlas of
    ``mesh_normalized.ply`` (same faces, same order) that segmented objects cut their texture from
    (:func:`write_textured_segment`).

    Args:
        textured: :class:`~san.mesh.texture.TexturedMesh` in the normalised frame.
        normalization: :class:`san.data.scene.Normalization` (normalised -> input frame).

    Returns:
        ``{file name: frame}``.
    """
    out = Path(out_dir)
    mesh_in = textured.to_trimesh(normalization.to_input_points(np.asarray(textured.mesh.vertices)))
    if np.linalg.det(np.asarray(normalization.transform)[:3, :3]) < 0:
        mesh_in.faces = mesh_in.faces[:, ::-1].copy()
    files = write_textured(mesh_in, out, TEXTURED_STEM, up, provenance)
    with atomic_path(out / ATLAS_FILE) as tmp:
        textured.atlas.save(tmp)
    files[ATLAS_FILE] = "normalized"
    return files


def write_textured_segment(
    mesh_dir: str | os.PathLike,
    vertices_normalized: np.ndarray,
    selected,
    out_dir: str | os.PathLike,
    stem: str,
    normalization=None,
    up=None,
    provenance: dict | None = None,
    close_holes: bool = False,
    max_hole_fraction: float = 1.0,
) -> dict[str, str]:
    """A segmented object's textured files, its texture cut from the scene's.

    Reads ``mesh_dir/mesh_atlas.npz`` and ``mesh_dir/mesh_textured.png`` (written by
    :func:`write_textured_scene` for the mesh being segmented), keeps the ``selected`` faces and
    gives them their own compact atlas at the scene texture's texel density, resampled from the
    scene's texture (:func:`san.mesh.texture.repack`; no NeRF needed).
    Writes ``{stem}.glb`` (+Y up) and ``{stem}.obj/.mtl/.png`` (input frame when ``normalization``
    is given). An empty selection writes nothing and returns ``{}``.

    Args:
        vertices_normalized: ``Vx3`` vertices of the segmented mesh (``mesh_normalized.ply``).
        selected: ``F`` bool faces of the object.
        close_holes: close the object's boundary loops (:func:`san.mesh.clean.close_holes`); the new
            faces take the texture colour of one loop vertex.

    Raises:
        FileNotFoundError: the atlas or texture is missing (naming the file).
        ValueError: ``selected`` does not match the atlas's face count.
    """
    from PIL import Image

    from san.mesh.texture import UVAtlas, repack, textured_trimesh

    mesh_dir = Path(mesh_dir)
    atlas_path, png_path = mesh_dir / ATLAS_FILE, mesh_dir / f"{TEXTURED_STEM}.png"
    for p in (atlas_path, png_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing; rule extract_mesh writes it when mesh.texture is on")
    atlas = UVAtlas.load(atlas_path)
    sel = np.asarray(selected, dtype=bool).reshape(-1)
    if sel.shape[0] != len(atlas.faces):
        raise ValueError(
            f"{atlas_path}: {len(atlas.faces)} faces, the selection has {sel.shape[0]} (atlas of another mesh?)"
        )
    if not sel.any():
        return {}
    image = np.asarray(Image.open(png_path).convert("RGB"))
    part = repack(textured_trimesh(vertices_normalized, atlas, image, face_mask=sel, crop=True))
    if close_holes:
        part = _close_textured_holes(part, max_hole_fraction)
    if normalization is not None:
        part.vertices = normalization.to_input_points(np.asarray(part.vertices))
        if np.linalg.det(np.asarray(normalization.transform)[:3, :3]) < 0:
            part.faces = part.faces[:, ::-1].copy()
    return write_textured(part, out_dir, stem, up, provenance)


def _close_textured_holes(part: trimesh.Trimesh, max_hole_fraction: float) -> trimesh.Trimesh:
    """Close the holes of a textured part: loops are found on the geometry (UV-seam duplicates
    merged, so seams are not holes); each fan face gets its own three vertices, all with the UV of
    one loop vertex, so the patch is one flat colour."""
    from san.mesh.clean import close_holes

    verts = np.asarray(part.vertices)
    unique, inverse = np.unique(verts, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    closed, n = close_holes(trimesh.Trimesh(unique, inverse[np.asarray(part.faces)], process=False), max_hole_fraction)
    if n == 0:
        return part
    some_vertex = np.empty(len(unique), dtype=np.int64)
    some_vertex[inverse] = np.arange(len(verts))
    new = np.asarray(closed.faces)[len(part.faces) :]  # (loop b, loop a, centre) in merged ids
    uv = np.asarray(part.visual.uv)
    patch_uv = np.repeat(uv[some_vertex[new[:, 1]]], 3, axis=0)
    patch_verts = np.asarray(closed.vertices)[new.reshape(-1)]
    faces = np.concatenate([np.asarray(part.faces), len(verts) + np.arange(3 * len(new)).reshape(-1, 3)])
    visual = trimesh.visual.TextureVisuals(uv=np.concatenate([uv, patch_uv]), image=part.visual.material.image)
    return trimesh.Trimesh(np.concatenate([verts, patch_verts]), faces, visual=visual, process=False)
