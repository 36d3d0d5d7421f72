"""Rule ``extract_mesh``: trained NeRF -> coloured triangle mesh (and, for the demo, its Chamfer check).

Outputs under ``results/{dataset}/{scene}/mesh/`` (each written atomically; ``mesh.json`` last, so
its presence means the stage finished):

* ``mesh.ply``: the mesh in the **input frame** (the capture's own coordinates, as in the source
  poses; ``Normalization.to_input_points``), vertex colours included. This is the file a user
  opens next to their data.
* ``mesh.glb``: the same mesh in **glTF's +Y-up frame** (the input frame rotated so that the
  scene's up is +Y), with normals and provenance in ``asset.extras`` (:mod:`san.mesh.export`).
* ``mesh_textured.glb`` (+Y up) and ``mesh_textured.obj/.mtl/.png`` (input frame), with
  ``mesh.texture`` on: the mesh with a baked UV texture, refined against the training photos when
  ``mesh.texture_refine_steps > 0`` (:mod:`san.mesh.texture`), and
  ``mesh_atlas.npz``, its UV atlas, from which segmented objects cut their texture.
* ``mesh_normalized.ply``: the same mesh in ``san``'s **normalised frame** (the frame of
  ``cameras.json`` and of the NeRF). Later stages (the mesh-surface imitation variant, mesh
  segmentation) ray-cast it together with the normalised cameras, so they read this one.
* ``chamfer.json`` (only with ground truth): see :func:`san.mesh.chamfer.evaluate_against_ground_truth`.
* ``mesh.json``: counts of faces / vertices after each step, timings, grid, config, frames of the
  files above, the cleaning report (``clean``: region, pieces, areas; :mod:`san.mesh.clean`),
  the texture's coverage and, with ground truth, the Chamfer fields (``chamfer``: objects'
  region; ``chamfer_scene``: whole scene inside the cameras' view).

Grid domain and vertex colours: :mod:`san.mesh.from_nerf` (:func:`~san.mesh.from_nerf.mesh_from_model`).

Ground truth (the demo scene): a folder with ``scene_gt.json`` and ``meshes/*.ply`` in the input
frame; the comparison region is the ``region_of_interest`` box of ``scene_gt.json`` and the bar is a
symmetric Chamfer of at most ``mesh.chamfer_bar`` (2 %) of its diagonal.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import trimesh

from san.config import to_dict
from san.data.scene import Normalization, Scene, load_scene
from san.mesh.chamfer import GroundTruth, evaluate_against_ground_truth, load_ground_truth
from san.mesh.config import MeshConfig
from san.mesh.extract import MeshExtraction, to_input_frame
from san.mesh.from_nerf import mesh_from_model, texture_from_model
from san.utils.device import resolve_device
from san.utils.io import atomic_path, atomic_write_json

log = logging.getLogger("san")

FORMAT_VERSION = 1
TEXTURED_OUTPUTS = {
    "textured_glb": "mesh_textured.glb",
    "textured_obj": "mesh_textured.obj",
    "textured_mtl": "mesh_textured.mtl",
    "textured_png": "mesh_textured.png",
    "atlas": "mesh_atlas.npz",
}
"""Rule output name -> the file :func:`san.mesh.export.write_textured_scene` writes (the OBJ names
its MTL and the MTL its PNG, so the four sit in one folder under these names)."""


@dataclass(frozen=True)
class MeshFiles:
    """The files rule ``extract_mesh`` writes, as its declared outputs (by name).

    Attributes:
        ply, glb, normalized, summary: outputs ``ply`` (input frame), ``glb`` (+Y up),
            ``normalized`` (normalised frame) and ``summary`` (``mesh.json``, written last).
        textured: outputs ``textured_glb, textured_obj, textured_mtl, textured_png, atlas``
            (:data:`TEXTURED_OUTPUTS`; ``None``: ``mesh.texture`` is off). They must sit in one
            folder under those names (checked).
        chamfer: ``chamfer.json`` (written only with ground truth; its content is also in
            ``summary``); default beside ``summary``.
    """

    ply: Path
    glb: Path
    normalized: Path
    summary: Path
    textured: Mapping[str, Path] | None = None
    chamfer: Path | None = None

    @classmethod
    def in_folder(cls, folder: str | os.PathLike, texture: bool = True) -> MeshFiles:
        """The stage's files under their usual names in ``folder`` (``san extract-mesh --out``)."""
        f = Path(folder)
        textured = {k: f / name for k, name in TEXTURED_OUTPUTS.items()} if texture else None
        return cls(f / "mesh.ply", f / "mesh.glb", f / "mesh_normalized.ply", f / "mesh.json", textured)

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, str | os.PathLike]) -> MeshFiles:
        """From the rule's declared outputs by name (``dict(snakemake.output.items())``): ``ply, glb,
        normalized, summary`` and, when ``mesh.texture`` is on, :data:`TEXTURED_OUTPUTS`."""
        textured = {k: Path(outputs[k]) for k in TEXTURED_OUTPUTS if k in outputs}
        core = [Path(outputs[k]) for k in ("ply", "glb", "normalized", "summary")]
        return cls(*core, textured or None)

    def textured_folder(self) -> Path:
        """The one folder of the textured files.

        Raises:
            ValueError: missing textured outputs, or ones not under :data:`TEXTURED_OUTPUTS`'s names
                in one folder (naming each).
        """
        given = {k: Path(v) for k, v in (self.textured or {}).items()}
        missing = sorted(set(TEXTURED_OUTPUTS) - set(given))
        if missing:
            raise ValueError(f"extract_mesh: mesh.texture is on but output(s) {missing} are not declared")
        folders = {p.parent for p in given.values()}
        bad = [f"{k}={p}" for k, p in given.items() if k in TEXTURED_OUTPUTS and p.name != TEXTURED_OUTPUTS[k]]
        if len(folders) != 1 or bad:
            raise ValueError(
                f"extract_mesh: the textured outputs must be {TEXTURED_OUTPUTS} in one folder (the OBJ refers to "
                f"its MTL and PNG by name); got {given}"
            )
        return folders.pop()


def _export(mesh: trimesh.Trimesh, path: Path) -> None:
    with atomic_path(path) as tmp:
        mesh.export(tmp)


def write_mesh_outputs(
    extraction: MeshExtraction,
    normalization: Normalization,
    files: MeshFiles,
    config: MeshConfig,
    ground_truth: GroundTruth | None = None,
    extra: dict | None = None,
    scene: Scene | None = None,
    textured=None,
) -> dict:
    """Write the stage's ``files`` (module docstring) and return the ``mesh.json`` record.

    ``scene`` gives the GLB's up axis (:func:`~san.mesh.export.scene_up`), the provenance and the
    cameras of the whole-scene Chamfer; ``textured`` (a :class:`~san.mesh.texture.TexturedMesh`)
    adds the textured files."""
    from san.mesh.clean import area_outside_box
    from san.mesh.export import scene_up, write_glb, write_textured_scene

    up = scene_up(scene.frames, normalization) if scene is not None else None
    provenance = {
        "source_scene": (scene.source.get("path") if scene is not None else None),
        "stage": "extract_mesh",
        "teacher": None,
        "teacher_note": "no teacher: the mesh comes from the NeRF alone",
    }
    textured_dir = files.textured_folder() if textured is not None else None  # checked before writing
    for path in (files.ply, files.glb, files.normalized, files.summary):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    timings = dict(extraction.stats.get("timings_s", {}))
    t = time.perf_counter()
    normalized = extraction.mesh
    mesh_in = to_input_frame(normalized, normalization)
    _export(normalized, Path(files.normalized))
    _export(mesh_in, Path(files.ply))
    write_glb(mesh_in, Path(files.glb), up, provenance)
    written = {
        Path(files.ply).name: "input",
        Path(files.glb).name: "gltf_y_up" if up is not None else "input",
        Path(files.normalized).name: "normalized",
    }
    timings["export"] = time.perf_counter() - t
    if textured is not None:
        t = time.perf_counter()
        written.update(write_textured_scene(textured, normalization, textured_dir, up, provenance))
        timings["texture_export"] = time.perf_counter() - t
        timings.update({f"texture_{k}": v for k, v in textured.stats.get("timings_s", {}).items()})
    clean = dict(extraction.stats.get("clean", {}))
    clean["area_input_frame"] = float(mesh_in.area)
    clean["units"] = (
        "area*: normalised frame, except area_input_frame and area_outside_object_region (input frame units squared)"
    )
    if ground_truth is not None:
        clean["area_outside_object_region"] = area_outside_box(mesh_in, ground_truth.region)
    record = {
        "format_version": FORMAT_VERSION,
        "files": written,
        "frames": {
            "input": "the capture's frame (the source poses' coordinates)",
            "normalized": "san's normalised frame (cameras.json, the NeRF)",
            "gltf_y_up": "the input frame rotated so that the scene up is +Y (glTF); no scale or shift",
        },
        "scene_up_input": None if up is None else up.tolist(),
        "clean": clean,
        "texture": None if textured is None else {k: v for k, v in textured.stats.items() if k != "timings_s"},
        "faces": int(len(mesh_in.faces)),
        "vertices": int(len(mesh_in.vertices)),
        "colors": bool(mesh_in.visual.kind == "vertex"),
        "counts": extraction.stats.get("counts", {}),
        "grid": extraction.stats.get("grid", {}),
        "bounds_input": mesh_in.bounds.tolist(),
        "bounds_normalized": normalized.bounds.tolist(),
        "config": to_dict(config),
        **(extra or {}),
    }
    if ground_truth is not None:
        t = time.perf_counter()
        chamfer = evaluate_against_ground_truth(
            mesh_in,
            ground_truth.meshes,
            ground_truth.bbox_diag,
            ground_truth.region,
            config.chamfer_samples,
            config.chamfer_bar,
            gt_views=ground_truth.views,
        )
        chamfer["ground_truth"] = list(ground_truth.names)
        timings["chamfer"] = time.perf_counter() - t
        if scene is not None:
            from san.mesh.chamfer import evaluate_scene_against_ground_truth

            cams = [f.camera.with_c2w(normalization.to_input_c2w(f.c2w)) for f in (scene.train_frames or scene.frames)]
            chamfer["scene"] = evaluate_scene_against_ground_truth(
                mesh_in,
                ground_truth.meshes,
                cams,
                config.region_view_fraction,
                config.chamfer_samples,
                config.chamfer_bar,
                gt_views=ground_truth.views,
            )
            log.info(
                "mesh: whole-scene Chamfer %.2f %% of the %.3g diagonal (bar %.1f %%)",
                100 * chamfer["scene"]["chamfer_fraction"],
                chamfer["scene"]["bbox_diag"],
                100 * config.chamfer_bar,
            )
        atomic_write_json(files.chamfer or Path(files.summary).with_name("chamfer.json"), chamfer)
        record["chamfer"] = chamfer
        log.info(
            "mesh: Chamfer %.4g (%.2f %% of the %.3g diagonal; bar %.1f %%: %s)",
            chamfer["chamfer_symmetric"],
            100 * chamfer["chamfer_fraction"],
            chamfer["bbox_diag"],
            100 * chamfer["bar"],
            "passed" if chamfer["passed"] else "FAILED",
        )
    record["timings_s"] = timings
    atomic_write_json(files.summary, record)
    return record


def extract_mesh(
    model_path: str | os.PathLike,
    cameras_json: str | os.PathLike,
    out: MeshFiles | Mapping[str, str | os.PathLike] | str | os.PathLike,
    config: MeshConfig = MeshConfig(),
    device: str | torch.device = "auto",
    ground_truth: str | os.PathLike | None = None,
) -> dict:
    """Rule ``extract_mesh``: load the NeRF and the scene, extract, clean, colour and write the mesh.

    Args:
        model_path: the NeRF saved by ``save_nerf`` (``results/.../nerf/...``).
        cameras_json: ``results/{dataset}/{scene}/poses/cameras.json``.
        out: the rule's declared outputs (:class:`MeshFiles`, or the mapping of
            :meth:`MeshFiles.from_outputs`), or a folder that gets the usual names
            (:meth:`MeshFiles.in_folder`, ``san extract-mesh --out``).
        config: :class:`~san.mesh.config.MeshConfig` (config section ``mesh:``).
        device: ``auto | cpu | cuda[:N]``; the density grid is queried there.
        ground_truth: optional folder with ``scene_gt.json`` and ``meshes/`` (the demo scene); when
            given, ``chamfer.json`` is written and the Chamfer fields go into ``mesh.json``.

    Returns:
        The ``mesh.json`` record.
    """
    from san.models.nerf import load_nerf

    t0 = time.perf_counter()
    if isinstance(out, MeshFiles):
        files = out
    elif isinstance(out, Mapping):
        files = MeshFiles.from_outputs(out)
    else:
        files = MeshFiles.in_folder(out, config.texture)
    if config.texture:
        files.textured_folder()  # a bad declaration fails before the NeRF loads
    dev = resolve_device(device) if isinstance(device, str) else device
    scene = load_scene(cameras_json)
    gt = load_ground_truth(ground_truth) if ground_truth is not None else None  # fail early on a bad folder
    model = load_nerf(model_path, dev)
    model.eval()
    extraction = mesh_from_model(model, scene, config, dev)
    textured = texture_from_model(model, scene, extraction.mesh, config, dev) if config.texture else None
    extra = {"model": str(model_path), "cameras": str(cameras_json), "device": str(dev), "scene_kind": scene.scene_kind}
    record = write_mesh_outputs(extraction, scene.normalization, files, config, gt, extra, scene, textured)
    log.info(
        "mesh: %d faces, %d vertices written to %s in %.1f s",
        record["faces"],
        record["vertices"],
        files.summary,
        time.perf_counter() - t0,
    )
    return record
