"""Mesh from a trained radiance model: the density grid's domain (world box, or NDC for
forward-facing scenes), vertex colours rendered by the model, and :func:`mesh_from_model`, which
runs :func:`san.mesh.extract.extract_mesh_with_stats` on it. Rule ``extract_mesh``
(:mod:`san.pipeline.extract_mesh`) writes the outputs.

Grid domain: the world box of ``NeRFModel.bounding_box()`` (unbounded scenes: the unit cube, where
the contraction is the identity) or, for forward-facing scenes, the model's NDC box (uniform in
disparity, as the model itself; :func:`model_grid_domain`). Vertex colours are the model's own
rendering of a short ray through each vertex along ``-normal`` (:func:`field_color_fn`).

Surface (``mesh.method``, :func:`surface_method`): the density's level set, or (``tsdf``) the
model's depth rendered from the training cameras and fused on the same grid (:mod:`san.mesh.tsdf`);
forward-facing models always use the density.

Models are told apart by declared types, not by probing their attributes: a :class:`DensityModel`
(density and box: meshed by its density on a world grid, no colours), a :class:`ColoredDensityModel`
(colours from its own ``color``: the analytic stand-ins of the tests), a
:class:`~san.models.base.RadianceModel` (renders rays: ``tsdf`` surfaces, textures baked along
training rays) and a :class:`FieldRadianceModel` (its scene space and radiance field: NDC grids,
colours from the field; :class:`~san.models.nerf.NeRFModel`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
import torch
import trimesh

from san.data.scene import Scene
from san.mesh.config import MeshConfig
from san.mesh.extract import ColorFn, MeshExtraction, PointMap, extract_mesh_with_stats, grid_shape
from san.models.base import RadianceModel
from san.rendering.samplers import SceneSpace, ndc_to_world, world_to_ndc

log = logging.getLogger("san")


@runtime_checkable
class DensityModel(Protocol):
    """What the mesh stage needs of a model at the least: a density and the box to mesh.

    A model that is nothing more is meshed on a world grid by its density level set (``mesh.method:
    tsdf`` falls back: it renders no rays), without colours. Every :class:`RadianceModel` is one.
    """

    def density(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``Px3`` -> volume density ``P`` (per unit of render distance, non-negative)."""

    def bounding_box(self) -> Any:
        """``2x3`` world ``[min, max]`` of the region to mesh: a tensor / array, or a ``(min, max)``
        pair (:func:`model_bbox`)."""


@runtime_checkable
class ColoredDensityModel(DensityModel, Protocol):
    """A :class:`DensityModel` that colours points itself (the tests' analytic stand-ins, which
    subclass it): vertex colours and the texture are its :meth:`color`."""

    def color(self, points: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        """``(world points Px3, unit view directions Px3) -> rgb Px3`` in ``[0, 1]`` (a
        :data:`~san.mesh.extract.ColorFn`)."""


@runtime_checkable
class FieldRadianceModel(RadianceModel, Protocol):
    """A :class:`~san.models.base.RadianceModel` whose scene space and radiance field the mesh stage
    reads (:class:`san.models.nerf.NeRFModel`): the grid domain comes from :attr:`space`
    (:func:`model_grid_domain`), vertex colours from :attr:`field` (:func:`field_color_fn`).

    Attributes:
        space: the scene space (:class:`~san.rendering.samplers.SceneSpace`): ``kind``, and for
            ``forward_facing`` the NDC parameters ``ndc_near``, ``ndc_ax``, ``ndc_ay``,
            ``ndc_margin`` and ``far``.
        field: ``(positions Px3 in the grid domain [0, 1]^3 (RadianceModel.normalize_positions),
            unit directions Px3) -> (density P, rgb Px3 in [0, 1])``.
    """

    space: SceneSpace
    field: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def model_bbox(model: DensityModel) -> np.ndarray:
    """``2x3`` ``[min, max]`` from ``model.bounding_box()`` (a ``2x3`` tensor / array or a
    ``(min, max)`` pair)."""
    box = model.bounding_box()
    if isinstance(box, (tuple, list)):
        box = [b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b) for b in box]
    elif isinstance(box, torch.Tensor):
        box = box.detach().cpu().numpy()
    return np.asarray(box, dtype=np.float64).reshape(2, 3)


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


def model_grid_domain(model: DensityModel) -> GridDomain:
    """NDC for a :class:`FieldRadianceModel` of a forward-facing scene (its ``space.kind``), else the
    world box of ``model.bounding_box()``."""
    if not isinstance(model, FieldRadianceModel) or model.space.kind != "forward_facing":
        return GridDomain(model_bbox(model))
    space = model.space
    near, ax, ay, m = float(space.ndc_near), float(space.ndc_ax), float(space.ndc_ay), 1.0 + float(space.ndc_margin)
    z_far = 1.0 - 2.0 * near / float(space.far)
    return GridDomain(
        np.array([[-m, -m, -1.0], [m, m, z_far]]),
        lambda g: ndc_to_world(g, near, ax, ay),
        lambda p: world_to_ndc(p, near, ax, ay),
    )


def field_color_fn(model: FieldRadianceModel, domain: GridDomain, half_length: float, samples: int = 9) -> ColorFn:
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


def model_color_fn(model: DensityModel, domain: GridDomain, half_length: float) -> ColorFn | None:
    """The colour of a point seen along a direction (a :data:`~san.mesh.extract.ColorFn`): a
    :class:`ColoredDensityModel`'s own ``color``, :func:`field_color_fn` of a
    :class:`FieldRadianceModel`, else ``None`` (no colours)."""
    if isinstance(model, ColoredDensityModel):
        return model.color
    if isinstance(model, FieldRadianceModel):
        return field_color_fn(model, domain, half_length)
    return None


def depth_cameras(cameras: list, max_views: int) -> list:
    """At most ``max_views`` of ``cameras``, evenly spaced in the list (first and last kept; 0: all)."""
    if max_views <= 0 or len(cameras) <= max_views:
        return list(cameras)
    return [cameras[i] for i in np.unique(np.round(np.linspace(0, len(cameras) - 1, max_views)).astype(int))]


def surface_method(model: DensityModel, config: MeshConfig) -> str:
    """The surface source :func:`mesh_from_model` uses: ``config.method``, except ``density`` for a
    model whose grid is not the world (forward-facing, NDC: :func:`model_grid_domain`) or that cannot
    render rays (not a :class:`~san.models.base.RadianceModel`), where ``tsdf`` falls back (logged)."""
    if config.method != "tsdf":
        return config.method
    if model_grid_domain(model).to_world is not None:
        log.info("mesh: method tsdf falls back to density: forward-facing scene (the grid is in NDC)")
        return "density"
    if not isinstance(model, RadianceModel):
        log.info("mesh: method tsdf falls back to density: the model renders no rays (not a RadianceModel)")
        return "density"
    return "tsdf"


def mesh_from_model(
    model: DensityModel, scene: Scene, config: MeshConfig, device: torch.device | str = "cpu"
) -> MeshExtraction:
    """Run :func:`~san.mesh.extract.extract_mesh_with_stats` on a :class:`DensityModel` (a
    :class:`san.models.nerf.NeRFModel` or a stand-in) on ``device``, culling with the scene's training
    cameras. The grid domain comes from :func:`model_grid_domain`; colours (:func:`model_color_fn`)
    are rendered over two voxels either side of each vertex.

    With ``config.method: tsdf`` (:func:`surface_method`) the field meshed is not the density but
    the TSDF fused from the model's depth rendered from the training cameras at
    ``config.tsdf_image_size`` pixels (:mod:`san.mesh.tsdf`), on the same grid, at level 0;
    ``stats["timings_s"]["depth_render"]`` is the rendering time."""
    domain = model_grid_domain(model)
    _, spacing = grid_shape(domain.bbox[0], domain.bbox[1], config.resolution)
    color_fn = model_color_fn(model, domain, half_length=2.0 * float(spacing.max()))
    cameras = scene.train_frames or scene.frames
    method = surface_method(model, config)
    field_fn, level, unknown_nan, depth_seconds = model.density, None, False, None
    with torch.no_grad():
        if method == "tsdf":
            from san.mesh.tsdf import render_depth_views, tsdf_fn

            t = time.perf_counter()
            views = render_depth_views(
                model, depth_cameras(cameras, config.tsdf_max_views), config.tsdf_image_size,
                config.tsdf_depth_opacity, device=device,
            )  # fmt: skip
            depth_seconds = time.perf_counter() - t
            log.info(
                "mesh: rendered %d depth maps %s in %.1f s", len(views), tuple(views.depth.shape[1:]), depth_seconds
            )
            field_fn = tsdf_fn(views, config.tsdf_truncation * float(spacing.max()))
            level, unknown_nan = 0.0, True
        result = extract_mesh_with_stats(
            field_fn,
            domain.bbox,
            config,
            cameras,
            color_fn,
            device,
            domain.to_world,
            scene.normalization.to_input_points,
            level,
            unknown_nan,
        )
    result.stats["grid"]["domain"] = "ndc" if domain.to_world is not None else "world"
    result.stats["grid"]["method"] = method
    if method == "tsdf":
        result.stats["grid"]["field"] = "negated TSDF (1 = truncation distance behind the surface)"
        result.stats["grid"]["tsdf_truncation_world"] = config.tsdf_truncation * float(spacing.max())
        result.stats["grid"]["tsdf_depth_maps"] = [len(views), *views.depth.shape[1:]]
        result.stats["timings_s"] = {"depth_render": depth_seconds, **result.stats["timings_s"]}
    return result


def texture_from_model(
    model: DensityModel, scene: Scene, mesh: trimesh.Trimesh, config: MeshConfig, device: torch.device | str = "cpu"
):
    """:func:`~san.mesh.texture.bake_texture` of the model's colour (as :func:`mesh_from_model`
    renders vertex colours, :func:`model_color_fn`) viewed from the training cameras; ``None`` for a
    model without colour. A :class:`~san.models.base.RadianceModel` (on ``device``) is baked along
    training rays (``config.texture_view``); other models fall back from ``train_ray`` to
    ``mean_train_view``."""
    from san.mesh.texture import bake_texture

    domain = model_grid_domain(model)
    _, spacing = grid_shape(domain.bbox[0], domain.bbox[1], config.resolution)
    color_fn = model_color_fn(model, domain, half_length=2.0 * float(spacing.max()))
    if color_fn is None:
        return None
    ray_fn = None
    if isinstance(model, RadianceModel):
        from san.cameras import RayBundle

        ray_fn = lambda o, d: model.render_rays(RayBundle(o, d)).rgb  # noqa: E731
    view = config.texture_view if ray_fn is not None or config.texture_view != "train_ray" else "mean_train_view"
    cameras = scene.train_frames or scene.frames
    with torch.no_grad():
        textured = bake_texture(
            mesh,
            color_fn,
            cameras,
            config.texture_size,
            config.texture_dilation,
            view,
            config.chunk,
            device,
            ray_fn=ray_fn,
            ray_chunk=max(256, config.chunk // 16),
        )
    if config.texture_refine_steps > 0:
        from san.data.images import load_image
        from san.mesh.texture import refine_texture

        photos = [load_image(f.image, background=scene.source.get("background")) for f in cameras]
        textured = refine_texture(
            textured,
            cameras,
            photos,
            config.texture_refine_steps,
            device=device,
            supersample=config.texture_supersample,
        )
    return textured
