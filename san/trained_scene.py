"""Loading a trained scene: cameras, NeRF, imitation field (and mesh) and the decoding teacher.

Every command that works on a trained scene (``san segment``, ``san view``, rule
``segment_prompts``) gets its parts here, below :mod:`san.interaction` and :mod:`san.pipeline`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from san.layout import require_stages

if TYPE_CHECKING:
    from san.data.scene import Scene

# ----------------------------------------------------------------------------- trained scene parts


@dataclass(frozen=True)
class SceneParts:
    """The three callables of a :class:`SegmentationSession` for a trained scene, plus its scene and
    the decoding teacher's :class:`~san.teachers.base.TeacherInfo` (name, ``untrained`` flag)."""

    scene: Scene
    render_fn: Callable
    features_fn: Callable
    decode_fn: Callable
    teacher_info: Any = None


def scene_parts(
    scene_dir: str | os.PathLike,
    variant: str = "full",
    teacher: Any = None,
    device: str = "auto",
    feature_hw: Sequence[tuple[int, int]] | None = None,
) -> SceneParts:
    """Load ``cameras.json``, the NeRF, the imitation field and the teacher of a scene folder
    (and ``mesh/mesh_normalized.ply`` for the mesh-surface variant).

    Args:
        scene_dir: ``results/{dataset}/{scene}``.
        variant: imitation variant (``imitation/{variant}/field.pt``).
        teacher: a :class:`san.teachers.Teacher`, a :class:`san.teachers.TeacherConfig` or ``None``
            (the default config); it must be the teacher the field was trained to imitate.
        device: ``auto | cpu | cuda[:N]``.
        feature_hw: per feature map, the ``(h, w)`` of the rendered (padded-square) map; default
            the teacher's (SAM: 64x64).
    """
    import torch

    from san.data.scene import load_scene
    from san.imitation.model import load_imitation
    from san.imitation.render import render_features
    from san.models.nerf import load_nerf
    from san.rendering.mesh_raycast import load_mesh
    from san.teachers import Teacher, TeacherConfig, teacher_from_config
    from san.utils.device import resolve_device

    paths = require_stages(scene_dir, ("cameras", "nerf", "field"), variant)
    dev = resolve_device(device)
    scene = load_scene(paths["cameras"])
    nerf = load_nerf(paths["nerf"], dev)
    field = load_imitation(paths["field"], dev)
    if hasattr(nerf, "eval"):
        nerf.eval()
    mesh = None
    if field.mesh_surface:  # the mesh-surface variant renders features at the mesh's surface points
        mesh = load_mesh(require_stages(scene_dir, ("mesh",), variant)["mesh"], dev)
    if not isinstance(teacher, Teacher):
        teacher = teacher_from_config(teacher if teacher is not None else TeacherConfig(), str(dev))
    if tuple(map(tuple, field.feature_shapes)) != tuple(map(tuple, teacher.info.feature_shapes)):
        raise ValueError(
            f"{paths['field']}: the field imitates feature maps {field.feature_shapes}, but teacher "
            f"{teacher.info.name!r} decodes {teacher.info.feature_shapes}; pass the teacher the field was trained with"
        )

    def _camera(c2w, K):
        return torch.as_tensor(np.asarray(c2w), dtype=torch.float32, device=dev), torch.as_tensor(np.asarray(K), dtype=torch.float32, device=dev)

    @torch.no_grad()
    def render_fn(c2w, K, width, height):
        c, k = _camera(c2w, K)
        return nerf.render_camera(c, k, width, height)

    @torch.no_grad()
    def features_fn(c2w, K, width, height):
        c, k = _camera(c2w, K)
        return render_features(nerf, field, c, k, width, height, feature_hw, mesh=mesh)

    @torch.no_grad()
    def decode_fn(features, prompts, image_size):
        return teacher.decode(features, prompts, image_size)

    return SceneParts(scene, render_fn, features_fn, decode_fn, teacher.info)
