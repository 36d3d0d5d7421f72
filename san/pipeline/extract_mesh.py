"""Rule ``extract_mesh``: trained NeRF -> coloured triangle mesh (and, for the demo, its Chamfer check).

Outputs under ``results/{dataset}/{scene}/mesh/`` (each written atomically; ``mesh.json`` last, so
its presence means the stage finished):

* ``mesh.ply``, ``mesh.glb``: the mesh in the **input frame** (the capture's own coordinates, as in
  the source poses; ``Normalization.to_input_points``), vertex colours included. This is the file a
  user opens next to their data. The GLB keeps the input frame's axes as they are (no conversion
  to glTF's +Y-up).
* ``mesh_normalized.ply``: the same mesh in ``san``'s **normalised frame** (the frame of
  ``cameras.json`` and of the NeRF). Later stages (the mesh-surface imitation variant, mesh
  segmentation) ray-cast it together with the normalised cameras, so they read this one.
* ``chamfer.json`` (only with ground truth): see :func:`san.mesh.chamfer.evaluate_against_ground_truth`.
* ``mesh.json``: counts of faces / vertices after each step, timings, grid, config, frames of the
  files above and, with ground truth, the Chamfer fields.

Grid domain and vertex colours: :mod:`san.mesh.from_nerf` (:func:`~san.mesh.from_nerf.mesh_from_model`).

Ground truth (the demo scene): a folder with ``scene_gt.json`` and ``meshes/*.ply`` in the input
frame; the comparison region is the ``region_of_interest`` box of ``scene_gt.json`` and the bar is a
symmetric Chamfer of at most ``mesh.chamfer_bar`` (2 %) of its diagonal.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch
import trimesh

from san.config import to_dict
from san.data.scene import Normalization, load_scene
from san.mesh.chamfer import GroundTruth, evaluate_against_ground_truth, load_ground_truth
from san.mesh.extract import (
    MeshConfig,
    MeshExtraction,
    to_input_frame,
)
from san.mesh.from_nerf import mesh_from_model
from san.utils.device import resolve_device
from san.utils.io import atomic_path, atomic_write_json

log = logging.getLogger("san")

FORMAT_VERSION = 1
MESH_FILES = {"mesh.ply": "input", "mesh.glb": "input", "mesh_normalized.ply": "normalized"}


def _export(mesh: trimesh.Trimesh, path: Path) -> None:
    with atomic_path(path) as tmp:
        mesh.export(tmp)


def write_mesh_outputs(
    extraction: MeshExtraction,
    normalization: Normalization,
    out_dir: str | os.PathLike,
    config: MeshConfig,
    ground_truth: GroundTruth | None = None,
    extra: dict | None = None,
) -> dict:
    """Write the stage's files (module docstring) and return the ``mesh.json`` record."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings = dict(extraction.stats.get("timings_s", {}))
    t = time.perf_counter()
    normalized = extraction.mesh
    mesh_in = to_input_frame(normalized, normalization)
    _export(normalized, out / "mesh_normalized.ply")
    _export(mesh_in, out / "mesh.ply")
    _export(mesh_in, out / "mesh.glb")
    timings["export"] = time.perf_counter() - t
    record = {
        "format_version": FORMAT_VERSION,
        "files": MESH_FILES,
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
        atomic_write_json(out / "chamfer.json", chamfer)
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
    atomic_write_json(out / "mesh.json", record)
    return record


def extract_mesh(
    model_path: str | os.PathLike,
    cameras_json: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: MeshConfig = MeshConfig(),
    device: str | torch.device = "auto",
    ground_truth: str | os.PathLike | None = None,
) -> dict:
    """Rule ``extract_mesh``: load the NeRF and the scene, extract, clean, colour and write the mesh.

    Args:
        model_path: the NeRF saved by ``save_nerf`` (``results/.../nerf/...``).
        cameras_json: ``results/{dataset}/{scene}/poses/cameras.json``.
        out_dir: ``results/{dataset}/{scene}/mesh``.
        config: :class:`~san.mesh.extract.MeshConfig` (config section ``mesh:``).
        device: ``auto | cpu | cuda[:N]``; the density grid is queried there.
        ground_truth: optional folder with ``scene_gt.json`` and ``meshes/`` (the demo scene); when
            given, ``chamfer.json`` is written and the Chamfer fields go into ``mesh.json``.

    Returns:
        The ``mesh.json`` record.
    """
    from san.models.nerf import load_nerf

    t0 = time.perf_counter()
    dev = resolve_device(device) if isinstance(device, str) else device
    scene = load_scene(cameras_json)
    gt = load_ground_truth(ground_truth) if ground_truth is not None else None  # fail early on a bad folder
    model = load_nerf(model_path, dev)
    model.eval()
    extraction = mesh_from_model(model, scene, config, dev)
    extra = {"model": str(model_path), "cameras": str(cameras_json), "device": str(dev), "scene_kind": scene.scene_kind}
    record = write_mesh_outputs(extraction, scene.normalization, out_dir, config, gt, extra)
    log.info(
        "mesh: %d faces, %d vertices written to %s in %.1f s",
        record["faces"],
        record["vertices"],
        out_dir,
        time.perf_counter() - t0,
    )
    return record
