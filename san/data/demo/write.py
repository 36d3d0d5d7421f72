"""Write the demo scene folder: images, a COLMAP text model and the ground truth beside them.

Layout of ``out_dir`` (all in the world frame of :mod:`san.data.demo.layout`)::

    images/view_000.png ...      RGB uint8 renders (the COLMAP image names)
    sparse/0/cameras.txt         one PINHOLE camera (fx fy cx cy)
    sparse/0/images.txt          world-to-camera qvec/tvec per view (COLMAP convention)
    sparse/0/points3D.txt        exact surface points seen by the views (coloured, empty tracks)
    depth/view_000.npy ...       float32 HxW distance along each pixel-centre ray (all finite)
    masks/view_000.png ...       uint8 HxW ids: 0 background (dome), 1 ground, 2.. objects
    meshes/{name}.ply            ground-truth meshes of the objects and the ground
    scene_gt.json                objects, ground, dome, light, region of interest, cameras, config

The folder is built under a temporary name beside ``out_dir`` and renamed onto it at the end, so
an interrupted run leaves no complete-looking ``out_dir``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

from san.config import to_dict
from san.data.colmap import ColmapCamera, ColmapPoint3D, image_from_c2w, write_model_text
from san.data.config import DemoSceneConfig
from san.data.demo.layout import (
    BACKGROUND_ID,
    GROUND_ID,
    demo_cameras,
    demo_intrinsics,
    demo_objects,
    light_direction,
    region_of_interest,
    view_name,
)
from san.data.demo.meshes import GROUND_RING_SPACING, surface_meshes
from san.data.demo.render import GROUND_COLORS, render_demo_view
from san.utils.io import atomic_folder, atomic_write_json
from san.utils.progress import Progress

log = logging.getLogger("san")

FORMAT_VERSION = 1
POINTS_PER_VIEW = 64  # sparse points sampled from each view's exact depth for points3D.txt


def _save_png(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array).save(path, format="PNG")


def _colmap_model(folder: Path, config: DemoSceneConfig, poses: np.ndarray, points: list[ColmapPoint3D]) -> None:
    K = demo_intrinsics(config)
    camera = ColmapCamera(1, "PINHOLE", config.width, config.height, (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    images = [image_from_c2w(k + 1, c2w, 1, view_name(k)) for k, c2w in enumerate(poses)]
    write_model_text(folder, [camera], images, points)


def _sample_points(
    view: dict, c2w: np.ndarray, K: np.ndarray, rng: np.random.Generator, first_id: int
) -> list[ColmapPoint3D]:
    """``POINTS_PER_VIEW`` exact surface points (dome included) of one rendered view."""
    h, w = view["depth"].shape
    flat = rng.choice(h * w, size=min(POINTS_PER_VIEW, h * w), replace=False)
    y, x = np.divmod(np.sort(flat), w)
    d_cam = np.stack([(x + 0.5 - K[0, 2]) / K[0, 0], (y + 0.5 - K[1, 2]) / K[1, 1], np.ones(len(x))], axis=-1)
    d_world = d_cam @ c2w[:3, :3].T
    d_world /= np.linalg.norm(d_world, axis=-1, keepdims=True)
    xyz = c2w[:3, 3] + view["depth"][y, x, None].astype(np.float64) * d_world
    rgb = np.round(view["rgb"][y, x] * 255).astype(int)
    return [
        ColmapPoint3D(first_id + i, tuple(map(float, p)), tuple(map(int, c))) for i, (p, c) in enumerate(zip(xyz, rgb))
    ]


def scene_description(config: DemoSceneConfig, poses: np.ndarray, mesh_files: dict[str, str]) -> dict:
    """The ``scene_gt.json`` mapping (see the module docstring)."""
    K = demo_intrinsics(config)
    roi = region_of_interest(config)
    return {
        "format_version": FORMAT_VERSION,
        "frame": "world: metres, +z up, ground plane z = 0; cameras OpenCV camera-to-world (san.cameras)",
        "ids": {
            str(BACKGROUND_ID): "background",
            str(GROUND_ID): "ground",
            **{str(o.id): o.name for o in demo_objects(config)},
        },
        "objects": [{**o.to_json(), "mesh": mesh_files[o.name]} for o in demo_objects(config)],
        "ground": {
            "id": GROUND_ID,
            "plane_z": 0.0,
            "shape": "disk",
            "center": [0.0, 0.0, 0.0],
            "radius": config.dome_radius,
            "checker_size": config.ground_checker,
            "colors": [list(c) for c in GROUND_COLORS],
            "mesh": mesh_files["ground"],
            "mesh_ring_spacing": GROUND_RING_SPACING,
        },
        "background": {
            "id": BACKGROUND_ID,
            "kind": "sky dome",
            "center": [0.0, 0.0, 0.0],
            "radius": config.dome_radius,
        },
        "region_of_interest": roi.tolist(),
        "light": {
            "direction_to_light": light_direction(config).tolist(),
            "ambient": config.ambient,
            "shadows": config.shadows,
        },
        "depth": "float32 distance along the unit ray through each pixel centre; finite everywhere (the dome encloses the cameras)",
        "cameras": {
            "model": "PINHOLE",
            "width": config.width,
            "height": config.height,
            "K": K.tolist(),
            "views": [{"image": f"images/{view_name(k)}", "c2w": c2w.tolist()} for k, c2w in enumerate(poses)],
        },
        "config": to_dict(config),
    }


def _write_scene(folder: Path, config: DemoSceneConfig) -> None:
    for sub in ("images", "depth", "masks", "meshes"):
        (folder / sub).mkdir(parents=True)
    poses, K = demo_cameras(config), demo_intrinsics(config)
    rng = np.random.default_rng(config.seed)
    points: list[ColmapPoint3D] = []
    progress = Progress(config.num_views, every=8, min_seconds=5.0, name="make_demo_scene view")
    for k, c2w in enumerate(poses):
        view = render_demo_view(c2w, K, config.width, config.height, config)
        stem = Path(view_name(k)).stem
        _save_png(np.round(view["rgb"] * 255).astype(np.uint8), folder / "images" / view_name(k))
        np.save(folder / "depth" / f"{stem}.npy", view["depth"].astype(np.float32))
        _save_png(view["ids"], folder / "masks" / f"{stem}.png")
        points += _sample_points(view, c2w, K, rng, first_id=len(points) + 1)
        progress.update(k)
    mesh_files = {}
    for name, mesh in surface_meshes(config).items():
        mesh_files[name] = f"meshes/{name}.ply"
        mesh.export(folder / mesh_files[name])
    _colmap_model(folder / "sparse" / "0", config, poses, points)
    atomic_write_json(folder / "scene_gt.json", scene_description(config, poses, mesh_files))


def make_demo_scene(out_dir: str | os.PathLike, config: DemoSceneConfig = DemoSceneConfig()) -> Path:
    """Render the demo scene into ``out_dir`` (replaced if present) and return it.

    Built in a temporary folder beside ``out_dir`` and renamed onto it only once complete.
    Deterministic: the same ``config`` gives the same bytes.
    """
    out_dir = Path(out_dir)
    with atomic_folder(out_dir) as tmp:
        _write_scene(tmp, config)
    log.info("make_demo_scene: %d views %dx%d -> %s", config.num_views, config.width, config.height, out_dir)
    return out_dir
