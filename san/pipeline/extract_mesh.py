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

Grid domain: the world box of ``NeRFModel.bounding_box()`` (unbounded scenes: the unit cube, where
the contraction is the identity) or, for forward-facing scenes, the model's NDC box (uniform in
disparity, as the model itself; :func:`model_grid_domain`). Vertex colours are the model's own
rendering of a short ray through each vertex along ``-normal`` (:func:`field_color_fn`).

Ground truth (the demo scene): a folder with ``scene_gt.json`` and ``meshes/*.ply`` in the input
frame; the comparison region is the ``region_of_interest`` box of ``scene_gt.json`` and the bar is a
symmetric Chamfer of at most ``mesh.chamfer_bar`` (2 %) of its diagonal.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

from san.config import to_dict
from san.data.scene import Normalization, Scene, load_scene
from san.mesh.chamfer import GroundTruth, evaluate_against_ground_truth, load_ground_truth
from san.mesh.extract import (
    ColorFn,
    MeshConfig,
    MeshExtraction,
    PointMap,
    extract_mesh_with_stats,
    grid_shape,
    mesh_config,
    to_input_frame,
)
from san.utils.device import resolve_device
from san.utils.io import atomic_path, atomic_write_json

log = logging.getLogger("san")

FORMAT_VERSION = 1
MESH_FILES = {"mesh.ply": "input", "mesh.glb": "input", "mesh_normalized.ply": "normalized"}


def model_bbox(model: Any) -> np.ndarray:
    """``2x3`` ``[min, max]`` from ``model.bounding_box()`` (a ``2x3`` tensor / array or a
    ``(min, max)`` pair)."""
    box = model.bounding_box()
    if isinstance(box, (tuple, list)):
        box = [b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b) for b in box]
    elif isinstance(box, torch.Tensor):
        box = box.detach().cpu().numpy()
    return np.asarray(box, dtype=np.float64).reshape(2, 3)


def ndc_to_world(g: torch.Tensor, near: float, ax: float, ay: float) -> torch.Tensor:
    """Inverse of :func:`san.rendering.samplers.world_to_ndc`: NDC ``...x3`` (``z' < 1``) -> world."""
    z = 2.0 * near / (1.0 - g[..., 2]).clamp_min(1e-9)
    return torch.stack([g[..., 0] * z / ax, g[..., 1] * z / ay, z], dim=-1)


@dataclass(frozen=True)
class GridDomain:
    """Where the density grid of a model is laid out (see :mod:`san.mesh.extract`).

    ``bbox`` is in grid coordinates. Grid coordinates are the model's *render* coordinates, in which
    its densities are per unit length: the world for unbounded scenes (inside the unit cube the
    contraction is the identity) and NDC for forward-facing ones. ``to_world`` / ``to_grid`` are
    ``None`` when the grid is the world.
    """

    bbox: np.ndarray
    to_world: PointMap | None = None
    to_grid: PointMap | None = None


def model_grid_domain(model: Any) -> GridDomain:
    """NDC for a forward-facing :class:`~san.models.nerf.NeRFModel` (its ``space.kind``), else the
    world box of ``model.bounding_box()``."""
    space = getattr(model, "space", None)
    if getattr(space, "kind", None) != "forward_facing":
        return GridDomain(model_bbox(model))
    from san.rendering.samplers import world_to_ndc

    near, ax, ay, m = float(space.ndc_near), float(space.ndc_ax), float(space.ndc_ay), 1.0 + float(space.ndc_margin)
    z_far = 1.0 - 2.0 * near / float(space.far)
    return GridDomain(
        np.array([[-m, -m, -1.0], [m, m, z_far]]),
        lambda g: ndc_to_world(g, near, ax, ay),
        lambda p: world_to_ndc(p, near, ax, ay),
    )


def field_color_fn(model: Any, domain: GridDomain, half_length: float, samples: int = 9) -> ColorFn:
    """Vertex colour as the model renders it along a short ray through the vertex.

    The ray runs along the view direction (``-normal``) over ``[-half_length, half_length]`` grid
    units around the vertex (so it starts outside the surface); its ``samples`` radiance-field
    samples are alpha-composited (:func:`san.rendering.volume.compute_weights`) and the colour is
    normalised by the accumulated opacity. Where nothing is opaque, the colour at the vertex is used.
    """
    from san.rendering.volume import accumulate, compute_weights

    to_grid = domain.to_grid or (lambda p: p)
    to_world = domain.to_world or (lambda g: g)
    offsets = torch.linspace(-half_length, half_length, samples, dtype=torch.float64)
    delta = 2.0 * half_length / (samples - 1)

    def color(points: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        p, d = points.double(), directions.double()
        g = to_grid(p)
        step = to_grid(p + 1e-4 * d) - g
        dg = step / step.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        gk = g[:, None, :] + offsets.to(g.device)[None, :, None] * dg[:, None, :]  # P x K x 3
        world = to_world(gk.reshape(-1, 3)).float()
        dirs = directions.float().repeat_interleave(samples, dim=0)
        sigma, rgb = model.field(model.normalize_positions(world), dirs)
        P = points.shape[0]
        weights = compute_weights(sigma.view(P, samples).float(), torch.full((P, samples), delta, device=sigma.device))
        acc = weights.sum(-1, keepdim=True)
        composited = accumulate(weights, rgb.view(P, samples, 3).float()) / acc.clamp_min(1e-6)
        centre = rgb.view(P, samples, 3)[:, samples // 2].float()
        return torch.where(acc > 1e-4, composited, centre)

    return color


def model_color_fn(model: Any, domain: GridDomain, half_length: float) -> ColorFn | None:
    """The model's own ``color(points, directions)`` if it has one, else :func:`field_color_fn` for a
    model with a radiance ``field`` and ``normalize_positions``, else ``None`` (no colours)."""
    own = getattr(model, "color", None)
    if callable(own):
        return own
    if hasattr(model, "field") and hasattr(model, "normalize_positions"):
        return field_color_fn(model, domain, half_length)
    return None


def mesh_from_model(model: Any, scene: Scene, config: MeshConfig, device: torch.device | str = "cpu") -> MeshExtraction:
    """Run :func:`~san.mesh.extract.extract_mesh_with_stats` on anything with ``density(points Px3) -> P``
    and ``bounding_box()`` (a :class:`san.models.nerf.NeRFModel` or a stand-in), culling with the
    scene's training cameras. The grid domain comes from :func:`model_grid_domain`; colours are
    rendered over two voxels either side of each vertex."""
    domain = model_grid_domain(model)
    _, spacing = grid_shape(domain.bbox[0], domain.bbox[1], config.resolution)
    color_fn = model_color_fn(model, domain, half_length=2.0 * float(spacing.max()))
    cameras = scene.train_frames or scene.frames
    with torch.no_grad():
        result = extract_mesh_with_stats(model.density, domain.bbox, config, cameras, color_fn, device, domain.to_world)
    result.stats["grid"]["domain"] = "ndc" if domain.to_world is not None else "world"
    return result


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


def extract_mesh_stage(
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
    if hasattr(model, "eval"):
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


def main(argv: list[str] | None = None) -> None:
    """``python -m san.pipeline.extract_mesh --model M --cameras C --out DIR [--preset cpu] [--ground-truth DIR]``."""
    from san.utils.progress import setup_logging

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="saved NeRF (save_nerf)")
    p.add_argument("--cameras", required=True, help="poses/cameras.json")
    p.add_argument("--out", required=True, help="output folder (results/{dataset}/{scene}/mesh)")
    p.add_argument("--preset", default="cpu", choices=sorted(MeshConfig.PRESETS))
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=JSON", help="override a mesh config key, e.g. resolution=256"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--ground-truth", default=None, help="folder with scene_gt.json and meshes/ (demo scene)")
    args = p.parse_args(argv)
    setup_logging()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    config = mesh_config({"preset": args.preset, **overrides})
    record = extract_mesh_stage(args.model, args.cameras, args.out, config, args.device, args.ground_truth)
    print(
        json.dumps(
            {k: record[k] for k in ("faces", "vertices", "counts", "timings_s")}
            | ({"chamfer": record["chamfer"]} if "chamfer" in record else {}),
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
