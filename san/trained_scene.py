"""Loading a trained scene: cameras, NeRF, imitation field (and mesh) and the teacher.

The ONE loader of a trained scene, below every caller (``san segment``, ``san view``, rules
``segment_prompts``, ``evaluate_segmentation``, ``train_imitation`` and ``time_teacher``), in the
spirit of nerfstudio's ``eval_setup``. Two levels:

* :func:`load_trained` takes the stage *files* (what a Snakemake rule declares);
* :func:`load_trained_scene` takes a scene folder ``results/{dataset}/{scene}``, checks that every
  stage file is there (:class:`san.layout.MissingStageError` names the file and its rule) and calls
  :func:`load_trained`.

One compatibility check (:func:`check_teacher`) compares the teacher with the one an artifact
records (``field.pt``'s ``teacher_info``, or a feature cache's attributes): registry name,
checkpoint SHA-256 and feature shapes ``(C, h, w)``. With ``teacher=None`` the field's recorded
teacher is built (its name and recorded checkpoint path); a field that records none, or a teacher
that differs, is a :class:`TeacherMismatchError` naming both. Everything is checked before the NeRF
is loaded.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import torch

from san.cameras import Camera, single_camera
from san.layout import require_stages

if TYPE_CHECKING:
    from san.data.scene import Scene
    from san.evaluation.config import EvaluationConfig
    from san.imitation.model import ImitationModel
    from san.models.base import RadianceModel
    from san.models.nerf import NeRFModel
    from san.teachers import Teacher, TeacherConfig, TeacherInfo

FIELD_HINT = "pass the teacher the field was trained with"


class TeacherMismatchError(ValueError):
    """A teacher that is not the one an artifact was made with; the message names both."""


# ------------------------------------------------------------------------------ teacher check


def recorded_teacher(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The teacher an imitation field's metadata records: ``teacher_info`` (name, ``untrained``,
    ``checkpoint``, ``checkpoint_sha256``, ``feature_shapes``) or, in older fields, only the name
    (``teacher``); ``None`` when it records none."""
    metadata = metadata or {}
    info = metadata.get("teacher_info")
    if isinstance(info, Mapping) and info.get("name"):
        return dict(info)
    if metadata.get("teacher"):
        return {"name": metadata["teacher"]}
    return None


def _describe(name: str, digest: str | None, shapes) -> str:
    parts = [repr(name)]
    if digest:
        parts.append(f"checkpoint sha256 {digest[:12]}")
    if shapes is not None:
        parts.append(f"feature maps {[list(s) for s in shapes]}")
    return " ".join(parts[:1]) + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")


def check_teacher(
    recorded: Mapping[str, Any] | None,
    info: TeacherInfo,
    where: str | os.PathLike,
    *,
    feature_shapes: Sequence[Sequence[int]] | None = None,
    given: str = "given",
    made: str = "the field imitates",
    hint: str = FIELD_HINT,
) -> None:
    """Check ``info`` against the teacher an artifact records.

    Args:
        recorded: ``{"name", "checkpoint_sha256"?, "feature_shapes"?}`` (:func:`recorded_teacher`,
            or a feature cache's attributes); ``None``: nothing recorded, only shapes are checked.
        info: the teacher's :class:`~san.teachers.base.TeacherInfo`.
        where: the artifact's path, first in the message.
        feature_shapes: the artifact's ``(C, h, w)`` per map, when it has them (a field's heads);
            otherwise the recorded ones.
        given: how the message names the teacher checked (``"given"``, ``"configured"``).
        made: how the message names the recorded teacher (``"the field imitates"``, ``"made with"``).
        hint: what the user should do, last in the message.

    Raises:
        TeacherMismatchError: another name, another checkpoint digest, or other feature shapes;
            the message names the recorded teacher and the given one.
    """
    shapes = feature_shapes if feature_shapes is not None else (recorded or {}).get("feature_shapes")
    shapes = None if shapes is None else tuple(tuple(int(v) for v in s) for s in shapes)
    if recorded is not None:
        name, digest = recorded["name"], recorded.get("checkpoint_sha256") or None
        theirs = _describe(name, digest, shapes)
        ours = _describe(info.name, info.checkpoint_sha256, info.feature_shapes)
        if name != info.name or (digest is not None and digest != (info.checkpoint_sha256 or None)):
            raise TeacherMismatchError(f"{where}: {made} teacher {theirs}, but the {given} teacher is {ours}; {hint}")
    if shapes is not None and shapes != tuple(info.feature_shapes):
        raise TeacherMismatchError(
            f"{where}: has feature maps {[list(s) for s in shapes]}, but teacher {info.name!r} decodes "
            f"{[list(s) for s in info.feature_shapes]}; {hint}"
        )


def resolve_teacher(
    recorded: Mapping[str, Any] | None,
    teacher: Teacher | TeacherConfig | None,
    device: str,
    where: str | os.PathLike,
    *,
    feature_shapes: Sequence[Sequence[int]] | None = None,
    given: str = "given",
    hint: str = FIELD_HINT,
) -> Teacher:
    """The teacher to use with an artifact, checked by :func:`check_teacher`.

    ``teacher`` is a built :class:`~san.teachers.Teacher`, a :class:`~san.teachers.TeacherConfig`
    (its name is checked before it is built) or ``None``: the recorded teacher, built from its
    recorded name and checkpoint path. Raises :class:`TeacherMismatchError` when ``teacher`` is
    ``None`` and nothing (or a teacher that cannot be rebuilt) is recorded.
    """
    from san.teachers import Teacher, TeacherConfig, TeacherError, teacher_from_config

    if teacher is None:
        if recorded is None:
            raise TeacherMismatchError(f"{where}: records no teacher, and none was given; {hint}")
        config = TeacherConfig(name=recorded["name"], checkpoint=recorded.get("checkpoint"))
        if recorded.get("checkpoint_sha256") and not config.checkpoint:
            raise TeacherMismatchError(
                f"{where}: the field imitates teacher {_describe(recorded['name'], recorded['checkpoint_sha256'], None)}, whose checkpoint "
                f"file is not recorded, and no teacher was given; {hint}"
            )
        try:
            teacher = teacher_from_config(config, device)
        except (TeacherError, OSError) as e:
            raise TeacherMismatchError(
                f"{where}: the field imitates teacher {recorded['name']!r}, which cannot be rebuilt ({e}); {hint}"
            ) from e
    elif not isinstance(teacher, Teacher):
        if recorded is not None and teacher.name != recorded["name"]:  # before building it
            shapes = feature_shapes if feature_shapes is not None else recorded.get("feature_shapes")
            theirs = _describe(recorded["name"], recorded.get("checkpoint_sha256"), shapes)
            raise TeacherMismatchError(
                f"{where}: the field imitates teacher {theirs}, but the {given} teacher is {teacher.name!r}; {hint}"
            )
        teacher = teacher_from_config(teacher, device)
    check_teacher(recorded, teacher.info, where, feature_shapes=feature_shapes, given=given, hint=hint)
    return teacher


# ------------------------------------------------------------------------------------ loading


@dataclass
class TrainedScene:
    """A loaded trained scene.

    Attributes:
        scene: cameras and normalisation (``poses/cameras.json``).
        nerf: the frozen NeRF, in eval mode.
        teacher: the teacher, checked against the field (or the record given to :func:`load_trained`).
        device: where everything lives.
        field: the imitation model (``None`` when no field was asked for).
        mesh: ``(vertices Vx3 float32, faces Fx3 int64)`` in the normalised frame, loaded for a
            mesh-surface field, else ``None``.
        paths: the files read, by stage (``cameras``, ``nerf``, ``field``, ``mesh``).
    """

    scene: Scene
    nerf: NeRFModel
    teacher: Teacher
    device: torch.device
    field: ImitationModel | None = None
    mesh: tuple[torch.Tensor, torch.Tensor] | None = None
    paths: dict[str, Path] = dataclasses.field(default_factory=dict)


def _no_mesh(field_path) -> Path:
    raise ValueError(f"{field_path}: a mesh-surface field needs the mesh (mesh/mesh_normalized.ply)")


def load_trained(
    cameras: str | os.PathLike,
    nerf: str | os.PathLike,
    *,
    field: str | os.PathLike | None = None,
    mesh: str | os.PathLike | Callable[[], Path] | None = None,
    teacher: Teacher | TeacherConfig | None = None,
    device: str = "auto",
    given: str = "given",
) -> TrainedScene:
    """Load a trained scene from its stage files.

    Args:
        cameras: ``poses/cameras.json``. nerf: ``nerf/model.pt``.
        field: ``imitation/{variant}/field.pt``, or ``None`` for the NeRF-and-teacher half only.
        mesh: ``mesh/mesh_normalized.ply`` (or a function returning it, called only when the field
            renders mesh surfaces; it may raise :class:`~san.layout.MissingStageError`).
        teacher: see :func:`resolve_teacher`; without a field, ``None`` means the default
            :class:`~san.teachers.TeacherConfig` (a caller with another record, e.g. a feature
            cache, checks it with :func:`check_teacher`).
        device: ``auto | cpu | cuda[:N]``.
        given: how errors name ``teacher`` (``"given"``, ``"configured"``).

    Raises:
        TeacherMismatchError: the teacher is not the field's; raised before the NeRF loads.
        ValueError: a mesh-surface field without a mesh.
    """
    from san.data.scene import load_scene
    from san.imitation.model import load_imitation
    from san.models.nerf import load_nerf
    from san.rendering.mesh_raycast import load_mesh
    from san.teachers import TeacherConfig
    from san.utils.device import resolve_device

    dev = resolve_device(device)
    paths = {"cameras": Path(cameras), "nerf": Path(nerf)}
    scene = load_scene(cameras)
    imitation, mesh_tensors = None, None
    if field is not None:
        paths["field"] = Path(field)
        imitation = load_imitation(field, dev)
        recorded = recorded_teacher(imitation.metadata)
        resolved = resolve_teacher(
            recorded, teacher, str(dev), field, feature_shapes=imitation.feature_shapes, given=given
        )
        if imitation.mesh_surface:
            mesh_path = mesh() if callable(mesh) else (mesh if mesh is not None else _no_mesh(field))
            paths["mesh"] = Path(mesh_path)
            mesh_tensors = load_mesh(mesh_path, dev)
    else:
        resolved = resolve_teacher(
            None, teacher if teacher is not None else TeacherConfig(), str(dev), paths["nerf"], given=given
        )
    model = load_nerf(nerf, dev)
    model.eval()
    return TrainedScene(scene, model, resolved, dev, imitation, mesh_tensors, paths)


def load_trained_scene(
    scene_dir: str | os.PathLike,
    variant: str = "full",
    device: str = "auto",
    teacher: Teacher | TeacherConfig | None = None,
) -> TrainedScene:
    """Load ``results/{dataset}/{scene}``: ``poses/cameras.json``, ``nerf/model.pt``,
    ``imitation/{variant}/field.pt`` (and ``mesh/mesh_normalized.ply`` for the mesh-surface
    variant) and the teacher (default: the one the field records), via :func:`load_trained`.

    Raises:
        MissingStageError: a stage file is missing (every one named with its rule), before loading.
        TeacherMismatchError: ``teacher`` is not the field's, or the field records none and none is given.
    """
    paths = require_stages(scene_dir, ("cameras", "nerf", "field"), variant)
    return load_trained(
        paths["cameras"],
        paths["nerf"],
        field=paths["field"],
        mesh=lambda: require_stages(scene_dir, ("mesh",), variant)["mesh"],
        teacher=teacher,
        device=device,
    )


# ----------------------------------------------------------------------------- session parts


@dataclass(frozen=True)
class SceneParts:
    """The three callables of a :class:`SegmentationSession` for a trained scene (its
    ``RenderFn`` / ``FeaturesFn`` take one :class:`~san.cameras.Camera`), plus its scene, the
    decoding teacher's :class:`~san.teachers.base.TeacherInfo` (name, ``untrained`` flag) and whether
    ``decode_fn`` takes text prompts (:attr:`san.teachers.base.Teacher.supports_text`)."""

    scene: Scene
    render_fn: Callable[[Camera], dict]
    features_fn: Callable[[Camera], list]
    decode_fn: Callable
    teacher_info: TeacherInfo | None = None
    supports_text: bool = False


def camera_renderer(nerf: RadianceModel) -> Callable[[Camera], dict]:
    """The session's ``render_fn(camera)``: one unbatched :class:`~san.cameras.Camera` (OpenCV
    camera-to-world in the normalised frame, ``K`` in pixels) -> ``nerf.render_camera(camera)``:
    ``rgb HxWx3``, ``depth HxW``, ``accumulation HxW`` on the NeRF's device, no gradients.

    Raises ``TypeError`` / :class:`~san.cameras.CameraError` for anything but one camera
    (:func:`~san.cameras.single_camera`, through ``render_camera``)."""

    @torch.no_grad()
    def render_fn(camera: Camera) -> dict:
        return nerf.render_camera(camera)

    return render_fn


def session_parts(trained: TrainedScene, feature_hw: Sequence[tuple[int, int]] | None = None) -> SceneParts:
    """The session callables of a loaded :class:`TrainedScene` (with a field).

    ``render_fn(camera)`` -> the NeRF's ``render_camera`` dict (:func:`camera_renderer`);
    ``features_fn(camera)`` -> the imitated maps of that :class:`~san.cameras.Camera`
    (``feature_hw``: per map the ``(h, w)`` of the padded-square map, default the teacher's);
    ``decode_fn`` -> the teacher's decoder; ``supports_text`` -> the teacher's.
    """
    from san.imitation.render import render_features

    nerf, imitation, mesh, teacher, dev = trained.nerf, trained.field, trained.mesh, trained.teacher, trained.device
    render_fn = camera_renderer(nerf)

    @torch.no_grad()
    def features_fn(camera: Camera) -> list:
        camera = single_camera(camera, "features_fn")
        c2w, K = camera.tensors(dev)
        return render_features(nerf, imitation, c2w, K, camera.width, camera.height, feature_hw, mesh=mesh)

    @torch.no_grad()
    def decode_fn(features, prompts, image_size):
        return teacher.decode(features, prompts, image_size)

    return SceneParts(
        trained.scene, render_fn, features_fn, decode_fn, teacher.info, supports_text=teacher.supports_text
    )


def scene_parts(
    scene_dir: str | os.PathLike,
    variant: str = "full",
    teacher: Teacher | TeacherConfig | None = None,
    device: str = "auto",
    feature_hw: Sequence[tuple[int, int]] | None = None,
) -> SceneParts:
    """:func:`load_trained_scene` then :func:`session_parts`.

    Args:
        scene_dir: ``results/{dataset}/{scene}``.
        variant: imitation variant (``imitation/{variant}/field.pt``).
        teacher: a :class:`san.teachers.Teacher`, a :class:`san.teachers.TeacherConfig` or ``None``
            (the teacher the field records); it must be the teacher the field was trained to imitate.
        device: ``auto | cpu | cuda[:N]``.
        feature_hw: per feature map, the ``(h, w)`` of the rendered (padded-square) map; default
            the teacher's (SAM: 64x64).
    """
    return session_parts(load_trained_scene(scene_dir, variant, device, teacher), feature_hw)


def rgb_renderer(nerf: RadianceModel, config: EvaluationConfig) -> Callable[[Any], torch.Tensor]:
    """``view -> HxWx3`` NeRF rendering (on the NeRF's device) of one :class:`~san.cameras.Camera` or
    a record holding one (an :class:`~san.evaluation.protocol.EvalView`), ``config.chunk`` rays at a
    time."""
    chunk = {} if config.chunk is None else {"chunk": config.chunk}

    @torch.no_grad()
    def render_rgb(view):
        return nerf.render_camera(Camera.of(view), **chunk)["rgb"]

    return render_rgb
