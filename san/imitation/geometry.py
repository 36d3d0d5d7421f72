"""Where the imitated features are rendered: feature-resolution cameras and the frozen ray geometry.

**Feature cameras.** A teacher resizes an ``H x W`` image so that its longest side is
``input_size`` (``H' x W'``, SAM's rounding) and zero-pads it to ``input_size x input_size``; a
feature map of ``h x w`` cells covers that padded square. A cell is therefore a pixel of a camera
with intrinsics ``K`` scaled by ``(W'/W) (w/input_size)`` along x and ``(H'/H) (h/input_size)``
along y (SAM, 1024 input, 64x64 map: ``64/1024`` of the teacher-input geometry). Only the top-left
``valid_hw`` cells see the image (:func:`san.teachers.base.valid_feature_hw`); only those are
rendered and supervised.

**Ray geometry.** Everything the semantic field needs from the frozen scene model, per ray:
sample weights and grid-domain positions, rendered RGB and depth. :func:`volume_geometry` takes it
from the NeRF (``render_rays``), optionally keeping only each ray's largest weights;
:func:`mesh_geometry` from a mesh (one surface point, weight 1 on a hit, 0 on a miss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from san.cameras import RayBundle, rays_from_pixels, scale_intrinsics
from san.rendering.mesh_raycast import raycast_mesh
from san.teachers.base import resized_hw, valid_feature_hw

GridMapping = Callable[[torch.Tensor], torch.Tensor]
"""``Px3`` world (normalised-scene) points -> ``Px3`` points in the grid domain ``[0, 1]^3``."""


@dataclass(frozen=True)
class FeatureCamera:
    """A feature map seen as a camera.

    Attributes:
        K: ``3x3`` intrinsics in feature-cell units (pixel centres at ``+0.5``).
        map_hw: ``(h, w)`` of the whole map (the padded square).
        valid_hw: ``(h, w)`` of its top-left region that covers the image.
    """

    K: torch.Tensor
    map_hw: tuple[int, int]
    valid_hw: tuple[int, int]

    def pixels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pixels Px2 (x, y) cell centres, index P into the flattened h*w map)`` of the valid
        cells, row-major."""
        vh, vw = self.valid_hw
        ys, xs = torch.meshgrid(torch.arange(vh), torch.arange(vw), indexing="ij")
        pixels = torch.stack([xs, ys], -1).reshape(-1, 2).to(self.K.dtype) + 0.5
        index = (ys * self.map_hw[1] + xs).reshape(-1)
        return pixels, index


def feature_camera(K, width: int, height: int, input_size: int, map_hw: Sequence[int]) -> FeatureCamera:
    """The :class:`FeatureCamera` of an ``h x w`` teacher map for an image ``width x height`` with
    intrinsics ``K`` (module docstring)."""
    K = torch.as_tensor(K, dtype=torch.float32).detach().cpu()
    rh, rw = resized_hw((height, width), input_size)
    h, w = int(map_hw[0]), int(map_hw[1])
    sx = (rw / width) * (w / input_size)
    sy = (rh / height) * (h / input_size)
    valid = valid_feature_hw((height, width), input_size, (h, w))
    return FeatureCamera(scale_intrinsics(K, sx, sy), (h, w), valid)


@dataclass(frozen=True)
class RayGeometry:
    """Frozen per-ray inputs of the semantic field.

    Attributes:
        weights: ``NxS`` rendering weights (``S = 1``, 0/1 for the mesh surface).
        points: ``NxSx3`` sample positions in the grid domain.
        rgb: ``Nx3`` rendered colour, or ``None`` (mesh surface).
        depth: ``N`` distance along the ray (``inf`` for a mesh miss).
        latent: ``NxL`` the NeRF's own geometry features rendered with the same (unpruned) weights,
            or ``None``.
    """

    weights: torch.Tensor
    points: torch.Tensor
    rgb: torch.Tensor | None
    depth: torch.Tensor
    latent: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.weights.shape[0]

    def _map(self, fn) -> "RayGeometry":
        return RayGeometry(
            *(None if t is None else fn(t) for t in (self.weights, self.points, self.rgb, self.depth, self.latent))
        )

    def __getitem__(self, index) -> "RayGeometry":
        return self._map(lambda t: t[index])

    def to(self, device) -> "RayGeometry":
        return self._map(lambda t: t.to(device))

    @staticmethod
    def cat(parts: Sequence["RayGeometry"]) -> "RayGeometry":
        s = max(p.weights.shape[1] for p in parts)

        def pad(t, value=0.0):
            extra = s - t.shape[1]
            if extra == 0:
                return t
            shape = list(t.shape)
            shape[1] = extra
            return torch.cat([t, t.new_full(shape, value)], 1)

        rgb = None if parts[0].rgb is None else torch.cat([p.rgb for p in parts])
        latent = None if parts[0].latent is None else torch.cat([p.latent for p in parts])
        return RayGeometry(
            torch.cat([pad(p.weights) for p in parts]),
            torch.cat([pad(p.points) for p in parts]),
            rgb,
            torch.cat([p.depth for p in parts]),
            latent,
        )

    def nbytes(self) -> int:
        tensors = [t for t in (self.weights, self.points, self.rgb, self.depth, self.latent) if t is not None]
        return sum(t.numel() * t.element_size() for t in tensors)


def keep_largest_weights(weights: torch.Tensor, positions: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(NxK weights, NxKx3 positions)`` of each ray's ``k`` largest weights (all when ``k`` is 0
    or at least ``S``)."""
    if k <= 0 or k >= weights.shape[1]:
        return weights, positions
    w, idx = torch.topk(weights, k, dim=1)
    return w, torch.gather(positions, 1, idx[..., None].expand(-1, -1, 3))


def nerf_latent_fn(nerf: Any) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``world points Px3 -> PxL`` geometry features of the NeRF's radiance field (the vector its
    colour MLP reads), or ``None`` when the model exposes none (``field.density_and_features``)."""
    field = getattr(nerf, "field", None)
    features = getattr(field, "density_and_features", None)
    normalize = getattr(nerf, "normalize_positions", None)
    if not callable(features) or not callable(normalize):
        return None
    return lambda points: features(normalize(points))[1]


@torch.no_grad()
def volume_geometry(
    nerf: Any,
    rays: RayBundle,
    to_grid: GridMapping,
    max_samples: int = 0,
    chunk: int = 8192,
    latent_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> RayGeometry:
    """Frozen NeRF geometry of ``rays`` (``nerf.render_rays(rays, features) -> RenderOutput`` with
    ``rgb``, ``depth``, ``weights NxS``, ``positions NxSx3`` and the accumulated ``features``),
    positions mapped by ``to_grid``; ``latent_fn`` (see :func:`nerf_latent_fn`) adds ``latent``."""
    was_training = getattr(nerf, "training", False)
    if hasattr(nerf, "eval"):
        nerf.eval()  # deterministic samples: a view's geometry is the same whenever it is computed
    parts = []
    try:
        for start in range(0, len(rays), chunk):
            out = (
                nerf.render_rays(rays[start : start + chunk], latent_fn)
                if latent_fn
                else nerf.render_rays(rays[start : start + chunk])
            )
            w, pos = keep_largest_weights(out.weights.float(), out.positions.float(), max_samples)
            n, s = w.shape
            grid_pos = to_grid(pos.reshape(n * s, 3)).reshape(n, s, 3)
            latent = out.features.float() if latent_fn else None
            parts.append(RayGeometry(w, grid_pos, out.rgb.float(), out.depth.float().reshape(-1), latent))
    finally:
        if was_training and hasattr(nerf, "train"):
            nerf.train()
    if not parts:
        z = rays.origins.new_zeros
        return RayGeometry(z(0, 1), z(0, 1, 3), z(0, 3), z(0))
    return parts[0] if len(parts) == 1 else RayGeometry.cat(parts)


BACKGROUND_DISTANCE = 1e3
"""Where a ray that misses the mesh reads the semantic grid (normalised units along the ray): far
enough that the scene's mapping (contraction / NDC) puts it on the grid's outer shell, so the grid
learns a per-direction background, like an environment map."""


@torch.no_grad()
def mesh_geometry(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    rays: RayBundle,
    to_grid: GridMapping,
    background: float | None = BACKGROUND_DISTANCE,
) -> RayGeometry:
    """One surface point per ray (Eq. 7), weight 1, at the nearest hit.

    A ray that misses the mesh gets depth ``inf`` (head input ``0``) and reads the grid at
    ``background`` along the ray (see :data:`BACKGROUND_DISTANCE`); with ``background=None`` it
    gets weight 0, i.e. zero grid features.
    """
    hits = raycast_mesh(vertices, faces, rays)
    hit = hits.hit
    points = hits.points(rays)
    if background is None:
        weights = hit.float()
        grid_pos = to_grid(points) * hit[:, None]
    else:
        far = rays.origins + background * rays.directions
        weights = torch.ones_like(hits.depth)
        grid_pos = to_grid(torch.where(hit[:, None], points, far))
    return RayGeometry(weights[:, None], grid_pos[:, None, :], None, hits.depth)


def feature_rays(
    c2w, camera: FeatureCamera, distortion: dict[str, float] | None = None
) -> tuple[RayBundle, torch.Tensor]:
    """Rays through the valid cells of a feature camera, and their indices into the flat map
    (both on the CPU, whatever device ``c2w`` is on)."""
    pixels, index = camera.pixels()
    c2w = torch.as_tensor(c2w, dtype=torch.float32).detach().cpu()
    return rays_from_pixels(pixels, c2w, camera.K.to(c2w.dtype), distortion), index
