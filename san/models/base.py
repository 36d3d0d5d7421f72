"""The radiance-model contract: what the stages after ``train_nerf`` need of a trained scene model.

:class:`san.models.nerf.NeRFModel` implements it; test stand-ins (an analytic sphere, a mesh
renderer) implement the same methods instead of being probed with ``hasattr``. Conventions are
:mod:`san.cameras`': OpenCV camera frame, world points in the scene's normalised frame, depth =
distance along the unit ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:
    from san.cameras import Camera, RayBundle
    from san.models.nerf import RenderOutput


@runtime_checkable
class RadianceModel(Protocol):
    """A trained radiance field of one scene (frozen after ``train_nerf``).

    Attributes:
        training: ``True`` in training mode (stochastic samples), ``False`` after :meth:`eval`.
        geometry_features: ``world points Px3 -> PxL`` geometry features (the vector the colour
            MLP reads), or ``None`` when the model has none (the imitation head's ``latent`` input).
    """

    training: bool
    geometry_features: Callable[[torch.Tensor], torch.Tensor] | None

    def eval(self) -> Any:
        """Deterministic sampling (returns the model)."""

    def train(self, mode: bool = True) -> Any:
        """Stochastic sampling when ``mode`` (returns the model)."""

    def render_rays(
        self, rays: RayBundle, features: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> RenderOutput:
        """``rays`` (``N`` origins and unit directions) -> ``RenderOutput`` with ``rgb Nx3``,
        ``depth N`` (along the ray), ``accumulation N``, ``weights NxS``, ``positions NxSx3`` and,
        with ``features(positions Px3) -> PxC``, their weight-accumulated ``features NxC``."""

    def render_camera(self, camera: Camera, chunk: int | None = None) -> Mapping[str, torch.Tensor]:
        """One pinhole :class:`~san.cameras.Camera` (``c2w 4x4`` OpenCV camera-to-world in the scene's
        normalised frame, ``K 3x3`` in pixels, ``width x height``; a batch of one is accepted, a larger
        batch raises :class:`~san.cameras.CameraError`: :func:`san.cameras.single_camera`) ->
        ``HxW[xC]`` maps, at least ``rgb HxWx3`` in ``[0, 1]`` and ``depth HxW`` (distance along the
        ray), on the model's device. ``chunk``: rays per call (``None``: the model's default)."""

    def normalize_positions(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``...x3`` -> the grid domain ``[0, 1]^3`` (shared by the semantic grid)."""

    def density(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``Px3`` -> volume density ``P`` (per unit of render distance)."""

    def bounding_box(self) -> Any:
        """``2x3`` world ``[min, max]`` of the region a mesh is extracted from."""
