"""Segmentation against ground truth: metrics and the benchmark protocol as small functions.

Protocol (this text is the reference; the README copies it)
-----------------------------------------------------------

For each *task* of a ground-truth layout (:mod:`san.data.gt_layout`: one object, prompts in
a reference view, masks in target views):

1. **Cameras.** Every view is rendered by the trained NeRF as an ideal pinhole camera (lens
   distortion ignored; the poses are ``poses/cameras.json``'s) at the *annotation resolution*:
   the size of the view's ground-truth mask (the reference view: the task's ``reference_size``),
   intrinsics scaled exactly (:func:`san.cameras.scale_intrinsics`). With ``max_size`` set, the
   rendering's longest side is capped at ``max_size`` pixels (aspect kept) and each predicted mask
   is resized back to the mask's size by nearest neighbour before scoring: scores are always
   computed at the annotation resolution.
2. **Prompt.** The task's points (and box) are scaled from ``reference_size`` to the reference
   rendering and given to a :class:`~san.interaction.session.SegmentationSession` in the
   reference view: the decoder turns the view's features plus the prompts into a mask (one
   positive point alone and no box: ``multimask_output=True`` and the best-scored of the masks,
   SAM's recommendation for an ambiguous single click; otherwise one mask). The points are lifted
   to 3D with the rendered depth.
3. **Tracking.** In each target view the lifted points are re-projected and kept where they pass
   the occlusion test of :mod:`san.interaction.tracking` (a box becomes the bounding rectangle of
   its lifted samples); the decoder turns the target view's features plus the tracked prompts into
   the target mask. A target where no prompt survives gets an empty mask (it is scored, not
   skipped). This is ``propagation: click``. A single click on a convex object is hidden (by the
   object itself) from cameras on its far side, so with cameras all around an object ``click``
   cannot score those views; ``propagation: chain`` visits every view of the scene from the
   reference outwards (nearest camera centre first) and lets each predicted mask add
   ``chain_points`` positive points (farthest-point sampling over the mask's interior, away from
   its edge, lifted with that view's depth), SA3D-style self-prompting; a mask covering more
   than ``chain_max_area`` (half) of the image adds none. In both, the decoder gets at most ``max_points`` positive
   points per view (``point_subset``: by default the original click, then the points nearest to
   the coordinate-wise median of the visible positive points, :func:`median_points`, so that
   the few points a spilled mask adds far from the object are the first left out; ``farthest``:
   a farthest-point subset, which picks exactly those outliers first) and every negative one.
4. **Features.** ``imitation``: the feature field renders the view's features (volumetric or on
   the mesh surface). ``teacher``: the teacher's encoder runs on the NeRF's RGB rendering of the
   view. The decoder, prompts and tracking are the same; only the features differ, so the
   teacher's figure is per-view SAM on rendered RGB with 3D-tracked prompts.
5. **Scores** per view, against the ground truth ``G`` with prediction ``P`` (both at the
   annotation resolution): IoU ``|P & G| / |P | G|`` (both empty: 1.0), pixel accuracy
   ``(|P & G| + |~P & ~G|) / (H W)``. Per task over its target views: ``iou_per_image_mean`` (mean of
   the per-view IoUs; "mIoU" in NVOS / SPIn-NeRF tables), ``iou_pooled`` (sum of intersections over
   sum of unions, every pixel weighs the same), ``accuracy_per_image_mean``, ``accuracy_pooled``.
   The reference view is scored separately (``reference_iou``) and never counted as a target.
   Per scene: ``miou`` = mean over tasks of ``iou_per_image_mean`` (per-object mIoU), ``iou_pooled``
   over every task and target view, ``accuracy`` = mean over tasks of
   ``accuracy_per_image_mean``.
6. **Held out.** Each view records its split in ``cameras.json``; a ``test`` view was held out of
   NeRF training and of feature imitation (the feature cache renders training views and views
   interpolated between them, which may pass near a test pose). Results report the share of
   held-out target views.

Mesh segmentation (:func:`segment_mesh`, :func:`surface_iou`): the predicted masks of ``K``
views are voted onto the extracted mesh (:class:`~san.interaction.mesh_segmentation.MeshSegmenter`,
z-buffer visibility, majority of the views that see a face); the selected faces are compared with
the task's ground-truth object surface by a sampled surface IoU (below).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from san.cameras import Camera, HoldsCamera, scale_intrinsics
from san.data.gt_layout import BenchmarkTask
from san.evaluation.config import PROPAGATIONS, BenchmarkConfig
from san.evaluation.masks import resize_mask
from san.interaction.session import FeaturesFn, RenderFn, SegmentationSession
from san.interaction.tracking import DepthTolerance

log = logging.getLogger("san")

SOURCES = ("imitation", "teacher")
VIEW_COLUMNS = (
    "source",
    "task",
    "view",
    "role",
    "split",
    "held_out",
    "iou",
    "accuracy",
    "tp",
    "fp",
    "fn",
    "tn",
    "pred_area",
    "gt_area",
    "prompts_used",
    "prompts_total",
    "score",
)


# ------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Confusion:
    """Pixel counts of a predicted mask against a ground-truth mask of the same size."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def iou(self) -> float:
        """``tp / (tp + fp + fn)``; ``1.0`` when both masks are empty."""
        union = self.tp + self.fp + self.fn
        return 1.0 if union == 0 else self.tp / union

    @property
    def accuracy(self) -> float:
        """Pixel accuracy ``(tp + tn) / pixels``."""
        n = self.tp + self.fp + self.fn + self.tn
        return (self.tp + self.tn) / n if n else 1.0


def confusion(pred, gt) -> Confusion:
    """:class:`Confusion` of two ``HxW`` masks (bool, or nonzero = inside).

    Raises:
        ValueError: the shapes differ.
    """
    p = _bool(pred)
    g = _bool(gt)
    if p.shape != g.shape:
        raise ValueError(f"confusion: prediction {p.shape} and ground truth {g.shape} differ in size")
    tp = int(np.count_nonzero(p & g))
    fp = int(np.count_nonzero(p & ~g))
    fn = int(np.count_nonzero(~p & g))
    return Confusion(tp, fp, fn, int(p.size) - tp - fp - fn)


def summarize_confusions(items: Sequence[Confusion]) -> dict:
    """Per-image means and pooled figures over views (module docstring, step 5).

    Returns:
        ``iou_per_image_mean``, ``iou_pooled``, ``accuracy_per_image_mean``, ``accuracy_pooled``,
        ``n_views``; the figures are ``None`` for no views.
    """
    if not items:
        return {
            "iou_per_image_mean": None,
            "iou_pooled": None,
            "accuracy_per_image_mean": None,
            "accuracy_pooled": None,
            "n_views": 0,
        }
    total = Confusion(*(sum(getattr(c, k) for c in items) for k in ("tp", "fp", "fn", "tn")))
    return {
        "iou_per_image_mean": float(np.mean([c.iou for c in items])),
        "iou_pooled": float(total.iou),
        "accuracy_per_image_mean": float(np.mean([c.accuracy for c in items])),
        "accuracy_pooled": float(total.accuracy),
        "n_views": len(items),
    }


def _bool(m) -> np.ndarray:
    if isinstance(m, torch.Tensor):
        m = m.detach().cpu().numpy()
    m = np.asarray(m)
    return m if m.dtype == bool else m > 0


# ------------------------------------------------------------------------------------ cameras


@dataclass(frozen=True)
class BenchmarkView(HoldsCamera):
    """One view of the benchmark.

    Attributes:
        name: image stem. index: position in ``cameras.json``. split: ``train`` / ``test``.
        camera: one :class:`~san.cameras.Camera` as in ``cameras.json``: ``c2w`` ``4x4`` (OpenCV,
            the frame of ``cameras.json``), ``K`` ``3x3`` at the image's ``width x height``;
            ``view.c2w``, ``view.K``, ``view.width``, ``view.height`` read it.
    """

    name: str
    index: int
    split: str
    camera: Camera

    def __post_init__(self) -> None:
        self._check_camera(f"benchmark view {self.name}")

    @property
    def held_out(self) -> bool:
        return self.split == "test"


def render_camera(view: BenchmarkView, size: tuple[int, int], max_size: int | None = None) -> Camera:
    """The pinhole :class:`~san.cameras.Camera` rendering ``view`` at the annotation size ``(W, H)``
    (capped at ``max_size`` on the longest side, aspect kept, when given).

    Raises:
        ValueError: the annotation's aspect ratio differs from the view's by more than a pixel.
    """
    w, h = int(size[0]), int(size[1])
    if abs(w * view.height / view.width - h) > 1.0:
        raise ValueError(
            f"view {view.name}: annotation size {w}x{h} does not have the image's aspect ratio ({view.width}x{view.height})"
        )
    if max_size is not None and max(w, h) > max_size:
        s = max_size / max(w, h)
        w, h = max(1, round(w * s)), max(1, round(h * s))
    K = scale_intrinsics(view.K, w / view.width, h / view.height)
    return Camera(view.c2w, K, w, h)


def scale_prompts(task: BenchmarkTask, camera: Camera) -> tuple[np.ndarray, np.ndarray, tuple[float, ...] | None]:
    """The task's points (``Nx2``), labels and box scaled from ``reference_size`` to ``camera``."""
    sx = camera.width / task.reference_size[0]
    sy = camera.height / task.reference_size[1]
    pts = np.asarray(task.points, dtype=np.float64).reshape(-1, 2) * [sx, sy]
    box = None if task.box is None else (task.box[0] * sx, task.box[1] * sy, task.box[2] * sx, task.box[3] * sy)
    return pts, np.asarray(task.labels, dtype=np.int64), box


# --------------------------------------------------------------------------------- the sources


class CameraMemo:
    """Memoise a session callable ``fn(camera)`` (a ``RenderFn`` / ``FeaturesFn`` of
    :mod:`san.interaction.session`) per camera, keyed by :meth:`Camera.key` (the benchmark revisits
    a few views).

    ``misses`` counts the calls of ``fn``; :meth:`prefill` stores results computed elsewhere (the
    renderings of rule ``render_benchmark_views``, shared by every variant of a scene).
    """

    def __init__(self, fn: Callable[[Camera], Any]) -> None:
        self.fn = fn
        self.cache: dict[bytes, Any] = {}
        self.misses = 0

    def __call__(self, camera: Camera) -> Any:
        """``fn(camera)``, computed once per camera (a record holding one: its :meth:`Camera.of`)."""
        camera = Camera.of(camera)
        key = camera.key()
        if key not in self.cache:
            self.cache[key] = self.fn(camera)
            self.misses += 1
        return self.cache[key]

    def prefill(self, camera: Camera, value: Any) -> None:
        """Store ``value`` as the result for ``camera``."""
        self.cache[Camera.of(camera).key()] = value


def teacher_decode_fn(teacher) -> Callable:
    """``decode(features, prompts, hw) -> (masks KxHxW, scores K)`` with the teacher's decoder;
    a single positive point without a box asks for several masks (module docstring, step 2)."""

    @torch.no_grad()
    def decode(features, prompts, image_size):
        single = prompts.points.shape[0] == 1 and prompts.box is None
        out = teacher.decode(features, prompts, image_size, multimask_output=single)
        return out.masks, out.scores

    return decode


def teacher_features_fn(teacher, render_fn: RenderFn) -> FeaturesFn:
    """``features(camera)``: the teacher's encoder on the RGB rendering ``render_fn(camera)["rgb"]``
    of one :class:`Camera` (a session ``FeaturesFn``)."""
    from san.evaluation.protocol import image_batch

    @torch.no_grad()
    def features(camera: Camera) -> list:
        return list(teacher.encode(image_batch(render_fn(camera)["rgb"])))

    return features


# ------------------------------------------------------------------------------------ protocol


@dataclass
class ViewScore:
    """One scored view of one task and source (columns of :data:`VIEW_COLUMNS`) plus masks."""

    source: str
    task: str
    view: str
    role: str  # reference | target | chain (a view the chain passed through, not scored)
    split: str
    held_out: bool
    confusion: Confusion | None
    pred_area: int
    gt_area: int | None
    prompts_used: int
    prompts_total: int
    score: float
    mask: np.ndarray | None = field(default=None, repr=False)
    render_mask: np.ndarray | None = field(default=None, repr=False)
    prompt_pixels: np.ndarray | None = field(default=None, repr=False)

    def row(self) -> dict:
        c = self.confusion
        return {
            "source": self.source,
            "task": self.task,
            "view": self.view,
            "role": self.role,
            "split": self.split,
            "held_out": self.held_out,
            "iou": None if c is None else c.iou,
            "accuracy": None if c is None else c.accuracy,
            "tp": None if c is None else c.tp,
            "fp": None if c is None else c.fp,
            "fn": None if c is None else c.fn,
            "tn": None if c is None else c.tn,
            "pred_area": self.pred_area,
            "gt_area": self.gt_area,
            "prompts_used": self.prompts_used,
            "prompts_total": self.prompts_total,
            "score": self.score,
        }


def run_task(
    task: BenchmarkTask,
    views: Mapping[str, BenchmarkView],
    gt_mask: Callable[[str], np.ndarray | None],
    render_fn: RenderFn,
    features_fn: FeaturesFn,
    decode_fn: Callable,
    source: str = "imitation",
    max_size: int | None = None,
    tolerance: DepthTolerance = DepthTolerance(),
    keep_masks: bool = True,
    propagation: str = "click",
    chain_points: int = 8,
    max_points: int = 8,
    chain_max_area: float = 0.5,
    point_subset: str = "median",
) -> list[ViewScore]:
    """The protocol (module docstring, steps 1-5) for one task and one feature source.

    Args:
        task: the task (prompts in ``task.reference_view``, scored in ``task.targets``).
        views: ``{image stem: BenchmarkView}``: every view the task names and, for ``chain``,
            every view the chain may pass through (the scene's frames).
        gt_mask: ``view -> HxW bool`` ground truth, or ``None`` (only the reference view may lack one).
        render_fn, features_fn, decode_fn: a :class:`SegmentationSession`'s callables
            (``render_fn(camera)``, ``features_fn(camera)`` of one :class:`Camera`; a
            :class:`CameraMemo` shares them between tasks).
        source: ``imitation`` or ``teacher`` (recorded).
        max_size: cap on the rendering's longest side (``None``: the annotation resolution).
        tolerance: the depth test of the tracking.
        keep_masks: keep each view's predicted mask (for figures and the mesh vote).
        propagation: ``click``: only the task's prompts are tracked into each target. ``chain``:
            views are visited from the reference outwards (:func:`chain_order`, every view of
            ``views``), and each predicted mask adds ``chain_points`` positive points
            (:func:`~san.data.gt_layout.mask_to_points`: spread over the mask's interior) lifted with that view's
            depth, so that prompts reach views that do not see the original click (module
            docstring, step 3).
        chain_points: points added per visited view (``chain``).
        chain_max_area: a visited view adds points only when its mask covers at most this share
            of the image (a mask spilling over the background would spread prompts over it).
        max_points: most positive points given to the decoder in one view (a subset of the
            visible ones chosen by ``point_subset``); negative points are all kept.
        point_subset: ``median`` (:func:`median_points`) or ``farthest`` (:func:`farthest_points`).

    Returns:
        One :class:`ViewScore` for the reference view, then one per target in ``task.targets`` order.

    Raises:
        ValueError: a target without ground truth, a prompt that cannot be lifted (no surface),
            an unknown ``propagation`` or ``point_subset``.
    """
    from san.data.gt_layout import mask_to_points

    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation {propagation!r} is not one of {PROPAGATIONS}")
    select = point_selector(point_subset)
    ref = views[task.reference_view]
    ref_gt = gt_mask(task.reference_view)
    ref_cam, visits = task_cameras(task, views, gt_mask, max_size, propagation)
    session = SegmentationSession(
        render_fn, features_fn, limit_points(decode_fn, max_points, select), tolerance=tolerance
    )
    session.set_camera(ref_cam)
    points, labels, box = scale_prompts(task, ref_cam)
    if len(points):
        session.add_clicks(points, labels)
    if box is not None:
        session.add_box(*box)
    n_prompts = len(points) + (box is not None)
    first = _score(
        session, source, task.task, ref, "reference", ref_gt, task.reference_size, n_prompts, True, max_points, select
    )

    def grow(score: ViewScore) -> None:
        m = score.render_mask
        if propagation == "chain" and m is not None and m.any() and m.mean() <= chain_max_area:
            pts = mask_to_points(m, chain_points)
            session.add_clicks(pts, np.ones(len(pts), dtype=np.int64))

    grow(first)
    targets: dict[str, ViewScore] = {}
    for name, cam, gt in visits:
        view = views[name]
        size = None if gt is None else (gt.shape[1], gt.shape[0])
        session.set_camera(cam)
        score = _score(
            session,
            source,
            task.task,
            view,
            "target" if size else "chain",
            gt if size else None,
            size or (cam.width, cam.height),
            n_prompts,
            True,
            max_points,
            select,
        )
        grow(score)
        if size:
            targets[name] = score
    out = [first, *(targets[n] for n in task.targets)]
    if not keep_masks:
        for sc in out:
            sc.mask = sc.render_mask = sc.prompt_pixels = None
    return out


def task_cameras(
    task: BenchmarkTask,
    views: Mapping[str, BenchmarkView],
    gt_mask: Callable[[str], np.ndarray | None],
    max_size: int | None = None,
    propagation: str = "click",
) -> tuple[Camera, list[tuple[str, Camera, np.ndarray | None]]]:
    """The cameras :func:`run_task` renders: ``(reference camera, [(view, camera, ground truth or
    None), ...])`` in visiting order; targets carry their ground-truth mask (``chain`` views,
    ``None``, are rendered at the reference view's scale).

    Raises:
        ValueError: a target without ground truth.
    """
    ref = views[task.reference_view]
    ref_cam = render_camera(ref, task.reference_size, max_size)
    scale = ref_cam.width / ref.width
    visit = chain_order(task.reference_view, views) if propagation == "chain" else list(task.targets)
    out = []
    for name in visit:
        view = views[name]
        if name in task.targets:
            gt = gt_mask(name)
            if gt is None:
                raise ValueError(f"task {task.task}: target view {name} has no ground-truth mask")
            out.append((name, render_camera(view, (gt.shape[1], gt.shape[0]), max_size), gt))
        else:
            cam = render_camera(view, (max(1, round(view.width * scale)), max(1, round(view.height * scale))))
            out.append((name, cam, None))
    return ref_cam, out


def benchmark_cameras(layout, views: Mapping[str, BenchmarkView], config: BenchmarkConfig) -> list[Camera]:
    """Every distinct camera the protocol renders for the tasks of ``layout`` (a
    :class:`san.data.gt_layout.GroundTruthLayout`), in first-use order: what rule
    ``render_benchmark_views`` renders once for all variants of a scene."""
    seen: dict[bytes, Camera] = {}
    for task in layout.tasks:

        def gt_mask(v, name=task.task):
            return layout.read_mask(name, v) if layout.has_mask(name, v) else None

        ref_cam, visits = task_cameras(task, views, gt_mask, config.max_size, config.propagation)
        for cam in [ref_cam, *(c for _, c, _ in visits)]:
            seen.setdefault(cam.key(), cam)
    return list(seen.values())


def chain_order(start: str, views: Mapping[str, BenchmarkView]) -> list[str]:
    """Every view but ``start``, in the order a chain visits them: repeatedly the unvisited view
    whose camera centre is nearest to any visited one (ties by name). On a ring of cameras this
    walks outwards from ``start`` in both directions."""
    names = sorted(views)
    centres = {n: np.asarray(views[n].c2w, dtype=np.float64)[:3, 3] for n in names}
    visited = [start]
    dist = {n: float(np.linalg.norm(centres[n] - centres[start])) for n in names if n != start}
    order = []
    while dist:
        nxt = min(dist, key=lambda n: (dist[n], n))
        order.append(nxt)
        del dist[nxt]
        dist = {n: min(d, float(np.linalg.norm(centres[n] - centres[nxt]))) for n, d in dist.items()}
        visited.append(nxt)
    return order


def farthest_points(points: np.ndarray, n: int) -> np.ndarray:
    """Indices of at most ``n`` of ``points`` (``Nx2``): the first point, then repeatedly the
    point farthest from those chosen (ties: lowest index). Deterministic."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) <= n:
        return np.arange(len(pts))
    chosen = [0]
    d = ((pts - pts[0]) ** 2).sum(1)
    while len(chosen) < n:
        k = int(np.argmax(d))
        chosen.append(k)
        d = np.minimum(d, ((pts - pts[k]) ** 2).sum(1))
    return np.array(sorted(chosen))


def median_points(points: np.ndarray, n: int) -> np.ndarray:
    """Indices of at most ``n`` of ``points`` (``Nx2``): the first point, then the ``n - 1`` others
    nearest to the coordinate-wise median of all ``N`` (ties: lowest index), sorted. Deterministic.

    The median is a robust centre (it moves little while fewer than half of the points are
    outliers), so points far from the bulk, such as those a mask that spilled over the
    background added in an earlier view of a chain, are the first left out. A farthest-point
    subset (:func:`farthest_points`) takes exactly those first. On the demo's ground-truth
    benchmark the median rule raised the teacher's mIoU from 0.558 to 0.645 and the imitation's from
    0.379 to 0.580 (README, "Ground-truth benchmark").
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) <= n:
        return np.arange(len(pts))
    if n < 1:
        return np.zeros(0, dtype=np.int64)
    d = np.linalg.norm(pts - np.median(pts, axis=0), axis=1)
    d[0] = -1.0  # the first point (the task's own click) is always kept
    return np.sort(np.argsort(d, kind="stable")[:n])


POINT_SUBSET_RULES = {"median": median_points, "farthest": farthest_points}
"""``benchmark.point_subset`` -> ``(points Nx2, n) -> indices``: how :func:`limit_points` keeps
``max_points`` of a view's visible positive points."""


def point_selector(name: str) -> Callable[[np.ndarray, int], np.ndarray]:
    """The :data:`POINT_SUBSET_RULES` rule called ``name``; ``ValueError`` naming the choices otherwise."""
    if name not in POINT_SUBSET_RULES:
        raise ValueError(f"benchmark.point_subset {name!r} is not one of {sorted(POINT_SUBSET_RULES)}")
    return POINT_SUBSET_RULES[name]


def limit_points(
    decode_fn: Callable, max_points: int, select: Callable[[np.ndarray, int], np.ndarray] = median_points
) -> Callable:
    """``decode_fn`` given at most ``max_points`` positive points, chosen by ``select``
    (:data:`POINT_SUBSET_RULES`; both rules keep the first point, the task's own click, while it is
    visible) and every negative one."""
    from san.teachers.base import Prompts

    def decode(features, prompts, image_size):
        labels = prompts.labels.reshape(-1)
        pos = torch.nonzero(labels == 1).reshape(-1)
        if len(pos) > max_points:
            keep = pos[torch.as_tensor(select(prompts.points[pos].cpu().numpy(), max_points))]
            idx = torch.sort(torch.cat([keep, torch.nonzero(labels != 1).reshape(-1)])).values
            prompts = Prompts(prompts.points[idx], labels[idx], prompts.box)
        return decode_fn(features, prompts, image_size)

    return decode


def _score(
    session,
    source,
    task,
    view: BenchmarkView,
    role,
    gt,
    size,
    n_prompts,
    keep,
    max_points: int | None = None,
    select: Callable[[np.ndarray, int], np.ndarray] = median_points,
) -> ViewScore:
    result = session.predict()
    vp = result.prompts
    used = int(vp.points.shape[0]) + (vp.box is not None)
    render_mask = result.mask.numpy()
    mask = resize_mask(render_mask, size)
    c = None if gt is None else confusion(mask, gt)
    return ViewScore(
        source=source,
        task=task,
        view=view.name,
        role=role,
        split=view.split,
        held_out=view.held_out,
        confusion=c,
        pred_area=int(mask.sum()),
        gt_area=None if gt is None else int(np.count_nonzero(gt)),
        prompts_used=used,
        prompts_total=n_prompts,
        score=float(result.score),
        mask=mask if keep else None,
        render_mask=render_mask if keep else None,
        prompt_pixels=_decoder_points(vp, max_points, select) if keep else None,
    )


def _decoder_points(vp, max_points: int | None, select: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """``Kx3`` ``(x, y, label)`` of the points the decoder got (after :func:`limit_points`)."""
    pts, labels = vp.points.numpy().reshape(-1, 2), vp.labels.numpy().reshape(-1)
    pos = np.flatnonzero(labels == 1)
    if max_points is not None and len(pos) > max_points:
        keep = np.sort(np.concatenate([pos[select(pts[pos], max_points)], np.flatnonzero(labels != 1)]))
        pts, labels = pts[keep], labels[keep]
    return np.column_stack([pts, labels])


def summarize_task(scores: Sequence[ViewScore]) -> dict:
    """Per task and source: the target-view figures of :func:`summarize_confusions`, the reference
    view's IoU, the number and share of held-out targets, and targets without a usable prompt."""
    targets = [s for s in scores if s.role == "target"]
    ref = next((s for s in scores if s.role == "reference"), None)
    out = summarize_confusions([s.confusion for s in targets])
    out["reference_iou"] = None if ref is None or ref.confusion is None else float(ref.confusion.iou)
    out["held_out_targets"] = int(sum(s.held_out for s in targets))
    out["held_out_fraction"] = float(np.mean([s.held_out for s in targets])) if targets else None
    out["targets_without_prompt"] = int(sum(s.prompts_used == 0 for s in targets))
    return out


def summarize_scene(per_task: Mapping[str, dict], scores: Sequence[ViewScore]) -> dict:
    """Scene figures of one source (module docstring, step 5): ``miou`` (mean over tasks of the
    per-image mean IoU), ``iou_pooled`` (all tasks and targets), ``accuracy`` (mean over tasks of
    the per-image mean accuracy), ``min_task_iou``."""
    ious = [t["iou_per_image_mean"] for t in per_task.values() if t["iou_per_image_mean"] is not None]
    accs = [t["accuracy_per_image_mean"] for t in per_task.values() if t["accuracy_per_image_mean"] is not None]
    pooled = summarize_confusions([s.confusion for s in scores if s.role == "target"])
    return {
        "miou": float(np.mean(ious)) if ious else None,
        "iou_pooled": pooled["iou_pooled"],
        "accuracy": float(np.mean(accs)) if accs else None,
        "accuracy_pooled": pooled["accuracy_pooled"],
        "min_task_iou": float(min(ious)) if ious else None,
        "n_tasks": len(per_task),
        "n_target_views": pooled["n_views"],
    }


# ------------------------------------------------------------------------- mesh segmentation


def segment_mesh(
    mesh, cameras: Sequence[Camera], masks: Sequence[np.ndarray], vote_threshold: float = 0.5, min_views: int = 1
) -> np.ndarray:
    """``F`` bool faces of ``mesh`` (``trimesh.Trimesh``, the cameras' frame) selected by the vote
    of ``masks`` (one ``HxW`` per camera, at the camera's size); see
    :class:`~san.interaction.mesh_segmentation.MeshSegmenter`."""
    from san.interaction.mesh_segmentation import MeshSegmenter

    seg = MeshSegmenter.from_trimesh(mesh, vote_threshold=vote_threshold, min_views=min_views)
    for cam, m in zip(cameras, masks):
        seg.add_view(torch.as_tensor(_bool(m)), cam.c2w, cam.K)
    return seg.selected().cpu().numpy()


def observed_faces(meshes: Sequence, cameras: Sequence[Camera]) -> list[np.ndarray]:
    """Per mesh, ``F_i`` bool: faces seen by at least one camera, every mesh hiding the others
    (z-buffer of their union, :func:`~san.interaction.mesh_segmentation.observe_faces`)."""
    import trimesh

    from san.interaction.mesh_segmentation import MeshSegmenter

    union = trimesh.util.concatenate(list(meshes))
    seg = MeshSegmenter.from_trimesh(union)
    for cam in cameras:
        seg.add_view(torch.ones(cam.height, cam.width, dtype=torch.bool), cam.c2w, cam.K)
    seen = (seg.visible_count > 0).cpu().numpy()
    out, start = [], 0
    for m in meshes:
        out.append(seen[start : start + len(m.faces)])
        start += len(m.faces)
    return out


def _dense_points(mesh, spacing: float, seed: int, cap: int = 2_000_000) -> np.ndarray:
    import trimesh

    n = int(np.clip(mesh.area / max(spacing, 1e-12) ** 2, 20_000, cap))
    pts, _ = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return pts


def surface_iou(
    selection, target, target_observed=None, distance: float = 0.05, samples: int = 20_000, seed: int = 0
) -> dict:
    """Sampled surface IoU of a selected surface against a ground-truth surface.

    ``samples`` points are drawn uniformly by area on the selection and on the target's observed
    part (``target_observed``: a ``trimesh.Trimesh`` of the target faces some view saw; ``None``:
    the whole target). ``precision`` = share of selection samples within ``distance`` of the
    *whole* target (so selecting true surface no view saw is no error), ``recall`` = share of
    observed-target samples within ``distance`` of the selection (distances to a dense sampling of
    the other surface, spacing ``distance / 4``). With areas ``A`` (selection), ``B`` (observed
    target) and ``I = (A precision + B recall) / 2``: ``surface_iou = I / (A + B - I)``.

    Returns:
        ``surface_iou``, ``precision``, ``recall``, ``selection_area``, ``target_area``.
    """
    import trimesh
    from scipy.spatial import cKDTree

    observed = target if target_observed is None else target_observed
    if selection is None or len(selection.faces) == 0 or len(observed.faces) == 0:
        return {
            "surface_iou": 0.0,
            "precision": 0.0,
            "recall": 0.0,
            "selection_area": 0.0 if selection is None else float(selection.area),
            "target_area": float(observed.area),
        }
    sel_q, _ = trimesh.sample.sample_surface(selection, samples, seed=seed)
    tgt_q, _ = trimesh.sample.sample_surface(observed, samples, seed=seed + 1)
    spacing = distance / 4
    precision = float((cKDTree(_dense_points(target, spacing, seed + 2)).query(sel_q)[0] <= distance).mean())
    recall = float((cKDTree(_dense_points(selection, spacing, seed + 3)).query(tgt_q)[0] <= distance).mean())
    A, B = float(selection.area), float(observed.area)
    inter = (A * precision + B * recall) / 2
    return {
        "surface_iou": inter / max(A + B - inter, 1e-12),
        "precision": precision,
        "recall": recall,
        "selection_area": A,
        "target_area": B,
    }


def spread_views(names: Sequence[str], views: Mapping[str, BenchmarkView], k: int) -> list[str]:
    """``k`` of ``names`` with cameras spread apart: the first name, then repeatedly the view whose
    camera centre is farthest from the chosen ones (ties: first in ``names``)."""
    if k >= len(names):
        return list(names)
    centres = Camera.stack([views[n] for n in names]).c2w[:, :3, 3]
    idx = [0] + [int(i) for i in farthest_points_nd(centres, k)[1:]]
    return [names[i] for i in idx]


def farthest_points_nd(points: np.ndarray, n: int) -> list[int]:
    """Farthest-point order (first point first, ties: lowest index) of ``NxD`` points, ``n`` of them."""
    pts = np.asarray(points, dtype=np.float64)
    chosen = [0]
    d = ((pts - pts[0]) ** 2).sum(1)
    while len(chosen) < min(n, len(pts)):
        k = int(np.argmax(d))
        chosen.append(k)
        d = np.minimum(d, ((pts - pts[k]) ** 2).sum(1))
    return chosen
