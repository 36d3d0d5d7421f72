"""Configuration of mesh extraction (:mod:`san.mesh.extract`).

Imports no torch, trimesh or h5py: every Snakemake parse reads these classes
(``san.pipeline.settings``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np


@dataclass(frozen=True)
class MeshConfig:
    """Settings of rule ``extract_mesh`` (config section ``mesh:``). Defaults are the ``cpu`` preset.

    Attributes:
        method: where the surface comes from: ``density`` (marching cubes of the density at
            ``threshold``, as NeRF2Mesh; :mod:`san.mesh.extract`) or ``tsdf`` (the NeRF's depth
            rendered from the training cameras, fused into a truncated signed distance on the same
            grid, marching cubes at its zero level, as nerfstudio's ``ns-export tsdf``;
            :mod:`san.mesh.tsdf`). Forward-facing (NDC) scenes always use ``density`` (logged).
        resolution: grid samples along the bounding box's longest side (paper: 512).
        threshold: density level of the surface (NeRF2Mesh: 10; see the module docstring);
            ``method: density`` only.
        tsdf_image_size: longest side, in pixels, of the depth maps rendered for ``method: tsdf``
            (the training images are resized to it; the cost grows with its square).
        tsdf_max_views: at most this many training cameras render a depth map, evenly spaced in
            the training list (0: all; ``method: tsdf``).
        tsdf_truncation: truncation distance of the TSDF in voxels (grid spacings; ``method: tsdf``).
        tsdf_depth_opacity: the depth fused is where the accumulated opacity along the pixel's ray
            reaches this level (0.5: the median depth; :func:`san.mesh.tsdf.opacity_depth`); rays
            that never reach it are not fused (``method: tsdf``).
        chunk: points per call of the density / colour function (bounds memory on the device).
        slab: grid planes per marching-cubes slab (bounds host memory; see the module docstring).
        min_views: a face is kept if at least this many training cameras see its centre
            (0 disables the visibility step).
        min_component_fraction: connected components with fewer than this fraction of all faces
            are removed (0 disables).
        target_faces: quadric decimation target (0 disables; paper: about 3e5).
        colors: compute vertex colours from the field.
        chamfer_samples: surface samples per mesh for the Chamfer distance.
        chamfer_bar: symmetric Chamfer bar as a fraction of the bounding-box diagonal.
        region: which part of the scene to keep: ``cameras`` (faces seen by at least
            ``region_view_fraction`` of the training cameras), ``box`` (``region_box``) or ``none``
            (:mod:`san.mesh.clean`).
        region_view_fraction: share of the training cameras that must see a face (``region: cameras``).
        region_box: ``[[min x, y, z], [max x, y, z]]`` in the input frame (``region: box``).
        min_piece_area_fraction: connected pieces with less than this fraction of the area are
            removed after the region cut (0 disables).
        close_holes: close boundary loops of segmented objects (unseen bottoms) with triangle fans;
            guessed geometry, so off by default (:func:`san.mesh.clean.close_holes`).
        max_hole_fraction: largest hole closed: its loop's bounding-box diagonal as a fraction of the
            object's.
        texture: bake a UV texture map and write textured GLB / OBJ (:mod:`san.mesh.texture`).
        texture_size: atlas resolution asked of xatlas, in texels a side (xatlas may grow the atlas to
            fit every chart; see :func:`san.mesh.texture.unwrap`).
        texture_dilation: texels of border padding around UV charts.
        texture_view: how a texel's colour is taken from the NeRF: ``train_ray`` (rendered along the
            ray of the best unoccluded training camera), ``mean_train_view`` (short ray along the
            average training view direction) or ``normal`` (short ray along the inward normal);
            see :mod:`san.mesh.texture`.
        texture_refine_steps: Adam steps fitting the texture to the training photos, geometry fixed
            (:func:`san.mesh.texture.refine_texture`; 0 disables).
        texture_supersample: sub-pixel rays per pixel side in that fit: each photo pixel is
            compared with the mean of ``S x S`` texture lookups (a box-filtered pixel); 1 casts one
            ray per pixel centre. It matters where a texel is as large as a pixel; on the demo
            (512 px atlas, texels finer than the photos' pixels; grid 160) 2 gave no gain (25.44 vs
            25.46 dB on the test views) for 4x the ray casting and memory, hence the default 1.
    """

    method: Literal["density", "tsdf"] = "tsdf"
    resolution: int = 256
    threshold: float = 10.0
    tsdf_image_size: int = 64
    tsdf_max_views: int = 24
    tsdf_truncation: float = 3.0
    tsdf_depth_opacity: float = 0.3
    chunk: int = 65536
    slab: int = 32
    min_views: int = 1
    min_component_fraction: float = 0.005
    target_faces: int = 100_000
    colors: bool = True
    chamfer_samples: int = 100_000
    chamfer_bar: float = 0.02
    region: Literal["cameras", "box", "none"] = "cameras"
    region_view_fraction: float = 0.25
    region_box: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    min_piece_area_fraction: float = 0.005
    close_holes: bool = False
    max_hole_fraction: float = 1.0
    texture: bool = True
    texture_size: int = 512
    texture_dilation: int = 8
    texture_view: Literal["train_ray", "mean_train_view", "normal"] = "train_ray"
    texture_refine_steps: int = 50
    texture_supersample: int = 1

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "cpu": {
            "resolution": 256,  # 160 before 2026-12-02: texture PSNR 25.46 -> 25.73 dB, +6 s, +0.3 GB
            "chunk": 65536,
            "slab": 32,
            "target_faces": 100_000,
            "chamfer_samples": 100_000,
            "texture_size": 512,
            "tsdf_image_size": 64,
            "tsdf_max_views": 24,
        },
        "paper": {
            "resolution": 512,
            "chunk": 262144,
            "slab": 32,
            "target_faces": 300_000,
            "chamfer_samples": 1_000_000,
            "texture_size": 1024,
            "tsdf_image_size": 256,
            "tsdf_max_views": 0,
        },
    }

    def __post_init__(self):
        checks = {
            "resolution": self.resolution >= 2,
            "chunk": self.chunk >= 1,
            "slab": self.slab >= 1,
            "min_views": self.min_views >= 0,
            "min_component_fraction": 0.0 <= self.min_component_fraction < 1.0,
            "target_faces": self.target_faces >= 0,
            "chamfer_samples": self.chamfer_samples >= 1,
            "chamfer_bar": self.chamfer_bar > 0,
            "threshold": np.isfinite(self.threshold),
            "tsdf_image_size": self.tsdf_image_size >= 8,
            "tsdf_max_views": self.tsdf_max_views >= 0,
            "tsdf_truncation": self.tsdf_truncation > 0,
            "tsdf_depth_opacity": 0.0 < self.tsdf_depth_opacity <= 1.0,
            "region_view_fraction": 0.0 < self.region_view_fraction <= 1.0,
            "region_box": self.region_box is None or all(hi > lo for lo, hi in zip(*self.region_box)),
            "min_piece_area_fraction": 0.0 <= self.min_piece_area_fraction < 1.0,
            "max_hole_fraction": self.max_hole_fraction > 0,
            "texture_size": 16 <= self.texture_size <= 16384,
            "texture_dilation": self.texture_dilation >= 0,
            "texture_refine_steps": self.texture_refine_steps >= 0,
            "texture_supersample": 1 <= self.texture_supersample <= 8,
        }
        if self.region == "box" and self.region_box is None:
            raise ValueError(
                "mesh config: mesh.region 'box' needs mesh.region_box [[min x, y, z], [max x, y, z]] (input frame)"
            )
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"mesh config: invalid value for {', '.join(f'mesh.{k}={getattr(self, k)!r}' for k in bad)}"
            )
