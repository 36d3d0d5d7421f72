"""Interactive segmentation of a scene: set a camera, click, get a mask; clicks follow the scene.

:class:`SegmentationSession` is composed of three callables, so that any renderer, feature source
and decoder can be plugged in (the trained pipeline, a teacher on real photos, test stand-ins):

* ``render_fn(camera) -> {"rgb": HxWx3, "depth": HxW, ...}``: an image of one unbatched
  :class:`~san.cameras.Camera` (``c2w`` ``4x4`` OpenCV camera-to-world in the frame of the
  session's views, ``K`` ``3x3`` in pixels, ``width x height``) and its depth (distance along the
  unit ray, :mod:`san.cameras`), numpy or torch (any device), ``rgb`` in ``[0, 1]``; it may add
  keys (``accumulation``, ids), which :meth:`SegmentationSession.render` passes through;
* ``features_fn(camera) -> list of feature maps`` of that camera (tensors in the layout
  ``decode_fn`` takes; the session passes them through, computed once per camera);
* ``decode_fn(features, prompts, image_size) -> (masks KxHxW, scores K, ...)`` with
  :class:`san.teachers.base.Prompts` (``image_size = (H, W)``); a :class:`~san.teachers.base.Decoded`
  fits.

:meth:`SegmentationSession.from_scene` wires them to a trained scene folder (NeRF + imitation field
+ teacher decoder; cameras in the scene's normalised frame). The session hands its callables one
unbatched :class:`~san.cameras.Camera`, never loose fields or a batch; :meth:`~SegmentationSession.set_camera`
takes a :class:`~san.cameras.Camera` or a record holding one (:meth:`Camera.of <san.cameras.Camera.of>`).
Requests the session cannot honour raise :class:`SessionError`: an invalid or batched camera, no
camera yet, an unknown view index, a ``render_fn`` result without ``rgb`` or ``depth``,
``decode_fn`` masks and scores of other shapes, a click off the image or off the rendered surface.

Prompts live in 3D. A click ``(x, y)`` (pixels, pixel centres at ``+0.5``) is lifted to the world
point ``origin + depth * direction`` with the depth rendered at that pixel; in every camera it is
re-projected and used only where it is on-screen and passes the depth test of
:mod:`san.interaction.tracking` (``|distance - rendered depth| <= 1.5 % of the depth + 0.005``); it is
dropped (for that camera only) when off-screen, behind or occluded. A box is lifted as a 5x5 grid of
points inside it (corners included); in another camera it becomes the bounding rectangle of those
points' projections, clipped to the image (no occlusion test: a box bounds a region, and a partly
hidden region is still a region). There is one box at a time, as in SAM: a new box replaces it.

Cameras are ideal pinhole cameras: a training view with lens distortion is rendered without it,
and click pixels are pixels of the *rendered* image.

Example::

    session = SegmentationSession.from_scene("results/llff/fern")
    session.set_view(0)
    session.add_click(120.5, 80.5)            # positive
    session.add_click(30.5, 40.5, label=0)    # negative
    result = session.predict()                # result.mask HxW bool, result.score
    session.set_camera(Camera(c2w, K, 640, 480))  # any pose (san.cameras.Camera): the clicks follow
    result = session.predict()
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import torch

from san.cameras import Camera, CameraError, PinholeLike, as_tensor, project_points
from san.interaction.tracking import DepthTolerance, PointStatus, lift_pixels, reproject_points
from san.teachers.base import Prompts

if TYPE_CHECKING:
    from san.teachers import Teacher, TeacherConfig

RenderFn = Callable[[Camera], Mapping[str, Any]]
"""``render_fn(camera) -> {"rgb": HxWx3, "depth": HxW, ...}`` of one unbatched :class:`Camera` (module docstring)."""
FeaturesFn = Callable[[Camera], Sequence[torch.Tensor]]
"""``features_fn(camera) -> list of feature maps`` of one unbatched :class:`Camera` (module docstring)."""
DecodeFn = Callable[[Sequence[torch.Tensor], Prompts, tuple[int, int]], Sequence[Any]]

BOX_GRID = 5


class SessionError(ValueError):
    """A request the session cannot honour (click outside the image, unknown view, no camera)."""


@dataclass(frozen=True)
class Click:
    """A click lifted to 3D: ``point`` ``3`` (world), ``label`` 1/0, where it was made."""

    point: np.ndarray
    label: int
    pixel: tuple[float, float]
    view: int | None


@dataclass(frozen=True)
class Box:
    """A box lifted to 3D: ``samples`` ``25x3`` world points, the ``(x0, y0, x1, y1)`` it was drawn as."""

    samples: np.ndarray
    pixels: tuple[float, float, float, float]
    view: int | None


@dataclass(frozen=True)
class ViewPrompts:
    """The session's prompts as seen from the current camera.

    Attributes:
        points: ``Nx2`` ``(x, y)`` of the clicks usable here. labels: ``N`` (1 positive, 0 negative).
        box: ``4`` ``(x0, y0, x1, y1)`` or ``None``.
        click_pixels: ``Cx2`` re-projection of *every* click (``C`` = clicks in the session).
        click_status: ``C`` :class:`PointStatus` names (``visible``, ``off_screen``, ``behind``, ``occluded``).
        box_status: ``None`` without a box, else ``visible``, ``off_screen`` or ``behind``.
        text: the session's text prompt (the same in every camera), or ``None``.
    """

    points: torch.Tensor
    labels: torch.Tensor
    box: torch.Tensor | None
    click_pixels: torch.Tensor
    click_status: tuple[str, ...]
    box_status: str | None
    text: str | None = None

    def to_prompts(self) -> Prompts | None:
        """:class:`Prompts` for the decoder, or ``None`` when nothing is usable here."""
        if self.text is not None:
            return Prompts(text=self.text)
        if self.points.shape[0] == 0 and self.box is None:
            return None
        return Prompts(self.points.float(), self.labels, None if self.box is None else self.box.float())


@dataclass(frozen=True)
class SegmentationResult:
    """Output of :meth:`SegmentationSession.predict`.

    Attributes:
        mask: ``HxW`` bool, the best mask (all False when no prompt is usable in this camera).
        score: its predicted quality (``0.0`` without prompts).
        masks: ``KxHxW`` bool, every candidate the decoder returned. scores: ``K``.
        prompts: the prompts used (:class:`ViewPrompts`).
    """

    mask: torch.Tensor
    score: float
    masks: torch.Tensor
    scores: torch.Tensor
    prompts: ViewPrompts


@dataclass
class _Cached:
    render: Mapping[str, Any]
    features: Sequence[torch.Tensor] | None = None


@dataclass
class SegmentationSession:
    """Clicks and boxes in 3D over a renderable scene (see the module docstring).

    Args:
        render_fn, features_fn, decode_fn: the three parts (module docstring).
        views: cameras addressable by index with :meth:`set_view` (:class:`Camera` or
            :class:`san.data.scene.Frame`); may be empty when only free poses are used.
        tolerance: the depth test of click tracking.
        cache_size: cameras whose rendering and features are kept (LRU).

    When ``decode_fn`` returns several candidate masks, :meth:`predict` keeps the best-scored one.
    """

    render_fn: RenderFn
    features_fn: FeaturesFn
    decode_fn: DecodeFn
    views: Sequence[Any] = ()
    tolerance: DepthTolerance = DepthTolerance()
    cache_size: int = 8
    clicks: list[Click] = field(default_factory=list, init=False)
    camera: Camera | None = field(default=None, init=False)
    view_index: int | None = field(default=None, init=False)
    text: str | None = field(default=None, init=False)
    _boxes: list[Box] = field(default_factory=list, init=False, repr=False)
    _history: list[str] = field(default_factory=list, init=False, repr=False)
    _cache: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            self.views = tuple(Camera.of(v) for v in self.views)
        except CameraError as e:
            raise SessionError(str(e)) from e

    @property
    def box(self) -> Box | None:
        """The active box (the last one added), or ``None``."""
        return self._boxes[-1] if self._boxes else None

    # ------------------------------------------------------------------------------- construction

    @classmethod
    def from_scene(
        cls,
        scene_dir: str | os.PathLike,
        variant: str = "full",
        teacher: Teacher | TeacherConfig | None = None,
        device: str = "auto",
        feature_hw: tuple[int, int] | None = None,
        **kwargs,
    ) -> "SegmentationSession":
        """A session over a trained scene folder ``results/{dataset}/{scene}``.

        Reads ``poses/cameras.json`` (views = all its frames, in file order), ``nerf/model.pt`` and
        ``imitation/{variant}/field.pt``; ``teacher`` is a :class:`san.teachers.Teacher`, a
        :class:`san.teachers.TeacherConfig` or ``None`` (the teacher the field records) and supplies
        the decoder; another teacher than the field's raises
        :class:`san.trained_scene.TeacherMismatchError`. A missing file raises :class:`san.layout.MissingStageError` naming it
        and the rule that makes it.
        """
        from san.trained_scene import scene_parts

        parts = scene_parts(scene_dir, variant=variant, teacher=teacher, device=device, feature_hw=feature_hw)
        return cls(parts.render_fn, parts.features_fn, parts.decode_fn, parts.scene.frames, **kwargs)

    # ------------------------------------------------------------------------------------ cameras

    def set_view(self, index: int) -> Camera:
        """Look through view ``index`` of ``views``."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= int(index) < len(self.views):
            raise SessionError(
                f"unknown view {index!r}: the session has {len(self.views)} view(s), indices 0..{len(self.views) - 1}"
            )
        self.camera = self.views[int(index)]
        self.view_index = int(index)
        return self.camera

    def set_camera(self, camera: Camera | PinholeLike) -> Camera:
        """Look through a free pose: one unbatched :class:`Camera` (``c2w`` ``4x4`` OpenCV
        camera-to-world, ``K`` ``3x3``, ``width x height`` pixels) or anything :meth:`Camera.of`
        takes (a :class:`san.data.scene.Frame`, an evaluation or benchmark view). Returns the camera.

        Raises:
            SessionError: not a camera (no ``c2w, K, width, height``), a camera that breaks the
                convention, or a batch of cameras.
        """
        try:
            camera = Camera.of(camera)
        except AttributeError as e:
            raise SessionError(
                f"set_camera takes a san.cameras.Camera (or a record holding one), got {camera!r}"
            ) from e
        except CameraError as e:
            raise SessionError(str(e)) from e
        if camera.batched:
            raise SessionError(f"set_camera takes one camera, got a batch of {len(camera)}: index it (cameras[i])")
        self.camera = camera
        self.view_index = None
        return self.camera

    def _require_camera(self) -> Camera:
        if self.camera is None:
            raise SessionError("no camera: call set_view(index) or set_camera(camera) first")
        return self.camera

    def _cached(self, camera: Camera) -> _Cached:
        key = camera.key()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        out = self.render_fn(camera)
        for name in ("rgb", "depth"):
            if name not in out:
                raise SessionError(f"render_fn returned no {name!r} (keys: {sorted(out)})")
        depth = as_tensor(out["depth"]).reshape(camera.height, camera.width)
        rgb = as_tensor(out["rgb"], torch.float32).reshape(camera.height, camera.width, 3)
        entry = _Cached({**out, "rgb": rgb, "depth": depth})
        self._cache[key] = entry
        while len(self._cache) > max(1, self.cache_size):
            self._cache.popitem(last=False)
        return entry

    def render(self) -> Mapping[str, Any]:
        """The current camera's rendering: ``rgb`` ``HxWx3`` float32, ``depth`` ``HxW`` float64, ..."""
        return self._cached(self._require_camera()).render

    @property
    def image(self) -> torch.Tensor:
        """``HxWx3`` rendered RGB of the current camera."""
        return self.render()["rgb"]

    @property
    def depth(self) -> torch.Tensor:
        """``HxW`` rendered depth (distance along the ray) of the current camera."""
        return self.render()["depth"]

    def features(self) -> Sequence[torch.Tensor]:
        """Feature maps of the current camera (computed once per camera)."""
        camera = self._require_camera()
        entry = self._cached(camera)
        if entry.features is None:
            entry.features = list(self.features_fn(camera))
        return entry.features

    # ------------------------------------------------------------------------------------ prompts

    def set_text(self, text: str) -> str:
        """Prompt with a text (concept) instead of clicks, for decoders with a text head (SAM 3).

        A text is not tied to a pixel: it is the same prompt in every camera, so it needs no
        tracking; every view (and the mesh vote of :meth:`segment_mesh`) decodes it. It replaces the
        session's clicks and box, and a later click or box replaces it.
        """
        if not isinstance(text, str) or not text.strip():
            raise SessionError(f"text prompt must be a non-empty string, got {text!r}")
        self.clear()
        self.text = text.strip()
        return self.text

    def add_click(self, x: float, y: float, label: int = 1) -> Click:
        """Add a click at ``(x, y)`` pixels of the current camera; ``label`` 1 positive, 0 negative."""
        return self.add_clicks([[x, y]], [label])[0]

    def add_clicks(self, points, labels) -> list[Click]:
        """Add ``N`` clicks: ``points`` ``Nx2`` ``(x, y)`` pixels, ``labels`` ``N`` of 1/0."""
        camera = self._require_camera()
        pts = as_tensor(points).reshape(-1, 2)
        labs = [int(v) for v in np.asarray(labels).reshape(-1)]
        if len(labs) != pts.shape[0]:
            raise SessionError(f"{pts.shape[0]} click(s) but {len(labs)} label(s)")
        if any(v not in (0, 1) for v in labs):
            raise SessionError(f"click labels must be 1 (positive) or 0 (negative), got {labs}")
        try:
            world = lift_pixels(pts, self.depth, camera.c2w, camera.K)
        except ValueError as e:
            raise SessionError(f"click: {e}") from e
        new = [
            Click(world[i].numpy(), labs[i], (float(pts[i, 0]), float(pts[i, 1])), self.view_index)
            for i in range(len(labs))
        ]
        self.text = None
        self.clicks.extend(new)
        self._history.extend("click" for _ in new)
        return new

    def add_box(self, x0: float, y0: float, x1: float, y1: float) -> Box:
        """Set the box ``(x0, y0)``-``(x1, y1)`` (pixels, top-left and bottom-right corners) in the
        current camera; it replaces any previous box."""
        camera = self._require_camera()
        W, H = camera.width, camera.height
        if not (0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H):
            raise SessionError(
                f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) must satisfy 0 <= x0 < x1 <= {W} and 0 <= y0 < y1 <= {H}"
            )
        gx = torch.linspace(x0, x1, BOX_GRID, dtype=torch.float64).clamp(max=W - 1e-6)
        gy = torch.linspace(y0, y1, BOX_GRID, dtype=torch.float64).clamp(max=H - 1e-6)
        grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1).reshape(-1, 2)
        try:
            samples = lift_pixels(grid, self.depth, camera.c2w, camera.K)
        except ValueError as e:
            raise SessionError(f"box: {e}") from e
        box = Box(samples.numpy(), (float(x0), float(y0), float(x1), float(y1)), self.view_index)
        self.text = None
        self._boxes.append(box)
        self._history.append("box")
        return box

    def undo(self) -> None:
        """Remove the last click or box (removing a box brings back the one it replaced)."""
        if not self._history:
            raise SessionError("nothing to undo")
        (self._boxes if self._history.pop() == "box" else self.clicks).pop()

    def clear(self) -> None:
        """Remove every click, the box and the text (the camera and the render cache stay)."""
        self.text = None
        self.clicks.clear()
        self._boxes.clear()
        self._history.clear()

    def view_prompts(self) -> ViewPrompts:
        """Re-project every prompt into the current camera (see the module docstring)."""
        camera = self._require_camera()
        if self.clicks:
            pts = np.stack([c.point for c in self.clicks])
            rep = reproject_points(pts, camera.c2w, camera.K, self.depth, self.tolerance)
            vis = rep.visible
            points = rep.pixels[vis]
            labels = torch.tensor([c.label for c in self.clicks], dtype=torch.int64)[vis]
            pixels, status = rep.pixels, tuple(PointStatus(int(s)).label for s in rep.status)
        else:
            points, labels = torch.zeros(0, 2, dtype=torch.float64), torch.zeros(0, dtype=torch.int64)
            pixels, status = torch.zeros(0, 2, dtype=torch.float64), ()
        box, box_status = None, None
        if self.box is not None:
            box, box_status = _reproject_box(self.box, camera)
        return ViewPrompts(points, labels, box, pixels, status, box_status, self.text)

    # ----------------------------------------------------------------------------------- decoding

    def predict(self) -> SegmentationResult:
        """The mask of the current camera from the prompts usable in it."""
        camera = self._require_camera()
        vp = self.view_prompts()
        prompts = vp.to_prompts()
        hw = (camera.height, camera.width)
        if prompts is None:
            empty = torch.zeros(hw, dtype=torch.bool)
            return SegmentationResult(empty, 0.0, empty[None][:0], torch.zeros(0), vp)
        out = self.decode_fn(self.features(), prompts, hw)
        masks = torch.as_tensor(out[0]).detach().cpu().bool()
        scores = torch.as_tensor(out[1]).detach().cpu().float().reshape(-1)
        if masks.dim() == 2:
            masks = masks[None]
        if masks.dim() == 4 and masks.shape[0] == 1:
            masks = masks[0]
        if masks.dim() != 3 or tuple(masks.shape[1:]) != hw or masks.shape[0] != scores.shape[0]:
            raise SessionError(
                f"decode_fn returned masks {tuple(masks.shape)} and scores {tuple(scores.shape)}; expected KxHxW = Kx{hw[0]}x{hw[1]} and K"
            )
        best = int(scores.argmax())
        return SegmentationResult(masks[best], float(scores[best]), masks, scores, vp)

    def predict_views(self, indices: Sequence[int]) -> list[SegmentationResult]:
        """:meth:`predict` in each of ``views[indices]`` (the current camera is restored)."""
        saved = (self.camera, self.view_index)
        try:
            results = []
            for i in indices:
                self.set_view(i)
                results.append(self.predict())
            return results
        finally:
            self.camera, self.view_index = saved

    def segment_mesh(self, mesh, views: Sequence[int], vote_threshold: float = 0.5, min_views: int = 1, device=None):
        """Cut the prompted object out of a mesh: predict a mask in each of ``views[...]`` with the
        session's prompts and vote them onto the mesh's faces
        (:class:`~san.interaction.mesh_segmentation.MeshSegmenter`). Views where no prompt is
        usable are skipped.

        Args:
            mesh: ``trimesh.Trimesh`` in the frame of the session's cameras (the pipeline's
                ``mesh_normalized.ply`` for :meth:`from_scene`).
            views: view indices to vote with.
            vote_threshold, min_views: the vote (see :mod:`san.interaction.mesh_segmentation`).
            device: where the z-buffer is computed (``None``: CPU).

        Returns:
            ``(segmenter, used_views)``; ``segmenter.selected()`` is the ``F`` bool face selection.
        """
        from san.interaction.mesh_segmentation import MeshSegmenter

        seg = MeshSegmenter.from_trimesh(mesh, vote_threshold=vote_threshold, min_views=min_views, device=device)
        used = []
        for v, res in zip(views, self.predict_views(views)):
            if res.prompts.to_prompts() is None:
                continue
            cam = self.views[v]
            seg.add_view(res.mask, cam.c2w, cam.K)
            used.append(v)
        return seg, used


def _reproject_box(box: Box, camera: Camera) -> tuple[torch.Tensor | None, str]:
    """Bounding rectangle (clipped to the image) of the box samples' projections in ``camera``."""
    pixels, z = project_points(as_tensor(box.samples), as_tensor(camera.c2w), as_tensor(camera.K))
    front = z > 1e-9
    if int(front.sum()) < 2:
        return None, PointStatus.BEHIND.label
    p = pixels[front]
    lo, hi = p.amin(dim=0), p.amax(dim=0)
    x0, x1 = float(lo[0].clamp(0, camera.width)), float(hi[0].clamp(0, camera.width))
    y0, y1 = float(lo[1].clamp(0, camera.height)), float(hi[1].clamp(0, camera.height))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None, PointStatus.OFF_SCREEN.label
    return torch.tensor([x0, y0, x1, y1], dtype=torch.float64), PointStatus.VISIBLE.label
