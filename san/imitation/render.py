"""Imitated feature maps for any camera: what evaluation and the interactive session decode."""

from __future__ import annotations

from typing import Sequence

import torch

from san.imitation.geometry import (
    GridMapping,
    feature_camera,
    feature_rays,
    mesh_geometry,
    nerf_latent_fn,
    volume_geometry,
)
from san.imitation.model import ImitationModel
from san.models.base import RadianceModel


def grid_mapping(nerf: RadianceModel) -> GridMapping:
    """The NeRF's world -> grid-domain mapping (``[0, 1]^3``), shared by the semantic grid:
    :meth:`~san.models.base.RadianceModel.normalize_positions`."""
    return nerf.normalize_positions


@torch.no_grad()
def render_features(
    nerf: RadianceModel,
    field: ImitationModel,
    c2w,
    K,
    width: int,
    height: int,
    feature_hw: Sequence[Sequence[int]] | None = None,
    *,
    mesh: tuple[torch.Tensor, torch.Tensor] | None = None,
    distortion: dict[str, float] | None = None,
    max_samples: int | None = None,
    chunk: int = 8192,
    to_grid: GridMapping | None = None,
) -> list[torch.Tensor]:
    """Render the imitated feature maps of a view, as the teacher would have produced them for the
    NeRF's ``width x height`` rendering with intrinsics ``K``.

    Args:
        nerf: the frozen NeRF (``render_rays`` and the grid mapping); for a mesh-surface model only
            its grid mapping is used.
        field: the trained :class:`ImitationModel`.
        c2w: ``4x4`` camera-to-world; K: ``3x3`` intrinsics of the ``width x height`` image.
        feature_hw: per map ``(h, w)`` of the full (padded-square) map; default the teacher's.
        mesh: ``(vertices Vx3, faces Fx3)`` in the normalised frame; required by mesh-surface models.
        distortion: OpenCV coefficients of the camera, if any.
        max_samples: keep each ray's largest NeRF weights only (``0``: all; default: as in training).
        chunk: rays per NeRF call.
        to_grid: override the NeRF's grid mapping.

    Returns:
        Per map a ``C x h x w`` float tensor (on ``field``'s device): the valid top-left cells
        rendered, the padded cells filled with the model's padding feature.
    """
    field.eval()
    device = next(field.parameters()).device
    to_grid = to_grid or grid_mapping(nerf)
    max_samples = field.max_samples if max_samples is None else max_samples
    shapes = field.feature_shapes
    hws = [tuple(s[1:]) for s in shapes] if feature_hw is None else [tuple(int(v) for v in hw) for hw in feature_hw]
    if len(hws) != len(shapes):
        raise ValueError(f"render_features: {len(hws)} feature sizes for {len(shapes)} maps")
    if field.mesh_surface and mesh is None:
        raise ValueError(
            "render_features: this imitation model renders mesh surface points; pass mesh=(vertices, faces)"
        )
    latent_fn = None
    if field.head_config.latent_dim:
        latent_fn = nerf_latent_fn(nerf)
        if latent_fn is None:
            raise ValueError(
                "render_features: the model was trained with NeRF geometry features; this NeRF exposes none"
            )
    maps = []
    shared: dict[tuple[int, int], tuple] = {}  # maps of one grid size (SAM 3: three pairs) share rays and geometry
    for i, ((c, _, _), (h, w)) in enumerate(zip(shapes, hws)):
        if (h, w) not in shared:
            cam = feature_camera(K, width, height, field.input_size, (h, w))
            rays, index = feature_rays(torch.as_tensor(c2w, dtype=torch.float32), cam, distortion)
            rays = rays.to(device)
            if field.mesh_surface:
                vertices, faces = mesh
                geom = mesh_geometry(vertices.to(device), faces.to(device), rays, to_grid)
            else:
                geom = volume_geometry(nerf, rays, to_grid, max_samples, chunk, latent_fn)
            shared[(h, w)] = (rays, index, geom)
        rays, index, geom = shared[(h, w)]
        out = torch.empty(len(rays), c, device=device)
        for start in range(0, len(rays), chunk):
            out[start : start + chunk] = field(geom[start : start + chunk], i)
        full = field.pad_feature(i)[:, None].expand(c, h * w).clone()
        full[:, index.to(device)] = out.T
        maps.append(full.reshape(c, h, w))
    return maps
