"""The segmentation evaluation protocol: imitation masks against the teacher's own masks.

Protocol (this text is the reference; the README copies it)
-----------------------------------------------------------

1. **Views.** The held-out views of the scene: the standard split, every 8th frame is ``test``
   (``Scene.test_frames``). Each view is *rendered by the trained NeRF*, not read from the photo,
   at a fixed protocol resolution: the longest side is ``evaluation.render_size`` pixels (paper:
   512; the CPU preset uses 128) and the other side keeps the aspect ratio (rounded), with the
   intrinsics scaled exactly (:func:`san.cameras.scale_intrinsics`). Views are rendered as pinhole
   cameras (lens distortion ignored) so that the RGB rendering and the rendered features share one
   geometry. ``evaluation.max_views`` optionally keeps only the first views.
2. **Teacher masks.** The teacher's encoder runs on that rendering; its decoder turns the features
   plus one prompt into a mask. **Imitation masks**: the feature field renders the features of the
   same view (volumetric, or on the mesh surface for the ``mesh`` variant) and *the same decoder*
   turns them plus the same prompt into a mask. Only the features differ.
3. **Prompts.** A 5x5 grid (``evaluation.grid``) of single positive clicks per view, one mask per
   click (``multimask_output=False``). Click ``k = j * n + i`` (``i`` column, ``j`` row, both
   ``0..n-1``, row-major from the top-left) sits at the centre of grid cell ``(i, j)``:
   ``(x, y) = ((i + 0.5) / n * W, (j + 0.5) / n * H)`` in :mod:`san.cameras`' pixel convention
   (pixel ``(0, 0)``'s centre at ``(0.5, 0.5)``); see :func:`click_grid`. A mask is the decoder's
   logits upsampled to the image size and thresholded at ``0`` (SAM's ``mask_threshold``).
4. **Mask IoU** per click: ``|A & B| / |A | B|`` of the teacher mask ``A`` and imitation mask
   ``B``. Empty masks: two empty masks agree, IoU ``1.0``; exactly one empty mask gives ``0.0``
   (:func:`mask_iou`). Averages: per view (mean over its clicks), per scene (mean over its views,
   equal to the mean over all its clicks since every view has the same number), per dataset (mean
   over its scenes, in the report).
5. **Feature agreement** per view, on the *valid region* only (the top-left feature cells that see
   the image once it is resized and padded to the teacher's square input,
   :meth:`san.teachers.base.Teacher.valid_hw`): the mean squared error between imitated and
   teacher features over all channels and valid cells, and the mean over valid cells of the cosine
   similarity of the two ``C``-vectors. With several feature maps, the plain mean over maps.
6. **Ceiling.** The teacher is not perfectly stable itself: :func:`teacher_shift_ceiling` shifts
   the rendering by half a feature cell (8 px at SAM's 1024-pixel input scale, i.e.
   ``8 * render_size / 1024`` rendered pixels, rounded, at least 1) right and down (the uncovered
   border replicates the edge), re-encodes it, decodes the same clicks moved by the same shift,
   and scores the masks against the unshifted teacher masks on the overlapping region. An
   imitation is not expected to agree with the teacher better than the teacher agrees with itself
   under a sub-patch shift; the report prints this ceiling beside every mean IoU. Below 128 px one
   pixel is already more than half a patch. For *untrained* teachers the number is no upper
   bound: a random mask decoder paints a stripe pattern locked to the 16-pixel patch grid, which a
   half-patch shift inverts (``sam_untrained_tiny`` on a fern photo at 128 px: 0.05 at the
   half-patch shift, 0.80 at a whole patch), while imitated features sit on the teacher's own grid.

7. **Text prompts** (teachers with a text head, SAM 3): every text of the scene's prompt list (the
   scene sheet's column ``text_prompts``, else ``evaluation.text_prompts``; e.g.
   ``["a yellow bulldozer", "the ground"]``) is decoded
   in every held-out view from the teacher's features and from the imitated ones, by the same text
   head; one mask per text (the union of the concept head's instances,
   :class:`san.teachers.sam3.Sam3Teacher`); IoU as in 4 (two empty masks agree). Per view the mean
   over texts, per scene the mean over views (``text_iou``); ``metrics.json``'s ``texts`` lists every
   (view, text) pair with both mask areas. A
   teacher without a text head with a non-empty list is an error.

Untrained teachers (random weights, ``TeacherInfo.untrained``) are measured exactly the same way;
every artifact records the flag and every table and figure says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from san.cameras import Camera, HoldsCamera

log = logging.getLogger("san")

# Columns of ``clicks.csv``: one row per click; ``score`` / ``teacher_score`` are the decoder's
# predicted IoU for the imitation / teacher mask.
CLICK_COLUMNS = ("view", "click", "x", "y", "iou", "teacher_area", "imitation_area", "score", "teacher_score")


# ------------------------------------------------------------------------------------- views


@dataclass(frozen=True)
class EvalView(HoldsCamera):
    """One held-out view at the protocol resolution.

    Attributes:
        index: position of the frame in ``Scene.frames``.
        name: the image's file stem (for tables and figures).
        camera: one :class:`~san.cameras.Camera` at the rendering size: ``c2w`` ``4x4``
            camera-to-world (OpenCV, normalised frame), ``K`` ``3x3`` scaled to ``width x height``
            pixels; ``view.c2w``, ``view.K``, ``view.width``, ``view.height`` read it.
    """

    index: int
    name: str
    camera: Camera

    def __post_init__(self) -> None:
        self._check_camera(f"evaluation view {self.name}")


class NamedView(Protocol):
    """What :func:`evaluate_views` reads of a view to label its results (an :class:`EvalView` fits);
    the callbacks get the view itself.

    Attributes:
        index: position of the frame in ``Scene.frames`` (:attr:`ViewResult.view`).
        name: the image's file stem (:attr:`ViewResult.name`).
    """

    index: int
    name: str


def evaluation_views(scene, render_size: int, max_views: int | None = None) -> list[EvalView]:
    """The scene's ``test`` frames as :class:`EvalView` at the protocol resolution (longest side
    ``render_size``, :meth:`san.cameras.Camera.resized`)."""
    views = []
    for index in scene.indices("test"):
        frame = scene.frames[index]
        views.append(EvalView(index, Path(frame.image).stem, frame.camera.resized(render_size)))
    if not views:
        raise ValueError("the scene has no test frames (split 'test'); cannot evaluate")
    return views[:max_views] if max_views else views


# ---------------------------------------------------------------------------- clicks and IoU


def click_grid(width: int, height: int, n: int = 5) -> np.ndarray:
    """``(n*n)x2`` float ``(x, y)`` clicks at the centres of an ``n x n`` grid of cells.

    Click ``k = j * n + i`` is at ``((i + 0.5) / n * width, (j + 0.5) / n * height)`` pixels
    (``i`` column, ``j`` row, row-major from the top-left; :mod:`san.cameras` convention).
    """
    i = np.arange(n, dtype=np.float64)
    xs = (i + 0.5) / n * width
    ys = (i + 0.5) / n * height
    gx, gy = np.meshgrid(xs, ys, indexing="xy")  # gx[j, i] = xs[i], gy[j, i] = ys[j]
    return np.stack([gx.reshape(-1), gy.reshape(-1)], axis=1)


def mask_iou(a, b) -> float:
    """IoU of two boolean masks of one shape (``HxW``).

    Two empty masks agree (``1.0``); exactly one empty mask gives ``0.0``.
    """
    a = _as_bool(a)
    b = _as_bool(b)
    if a.shape != b.shape:
        raise ValueError(f"mask_iou: shapes differ, {a.shape} vs {b.shape}")
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def _as_bool(m) -> np.ndarray:
    if isinstance(m, torch.Tensor):
        m = m.detach().cpu().numpy()
    m = np.asarray(m)
    return m if m.dtype == bool else m > 0


# ----------------------------------------------------------------------------------- features


def feature_agreement(
    imitated: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], valid_hw: Sequence[tuple[int, int]]
) -> tuple[float, float]:
    """``(mse, cosine)`` between imitated and teacher features on the valid region.

    Args:
        imitated: one map per teacher feature map, ``Cxhxw`` or ``1xCxhxw``, covering at least the
            valid region (the padded map or only its valid top-left part).
        teacher: the teacher's maps, ``1xCxhxw`` or ``Cxhxw``.
        valid_hw: per map, the top-left ``(h, w)`` cells that see the image.

    Returns:
        Mean squared error over channels and valid cells, and mean cosine similarity of the
        per-cell ``C``-vectors; each averaged over the maps.
    """
    if not (len(imitated) == len(teacher) == len(valid_hw)):
        raise ValueError(
            f"feature_agreement: {len(imitated)} imitated maps, {len(teacher)} teacher maps, {len(valid_hw)} valid regions"
        )
    mses, coss = [], []
    for level, (fi, ft, (vh, vw)) in enumerate(zip(imitated, teacher, valid_hw)):
        fi = _chw(fi).float()
        ft = _chw(ft).float().to(fi.device)
        if fi.shape[0] != ft.shape[0] or fi.shape[1] < vh or fi.shape[2] < vw or ft.shape[1] < vh or ft.shape[2] < vw:
            raise ValueError(
                f"feature_agreement: map {level}: imitated {tuple(fi.shape)} and teacher {tuple(ft.shape)} "
                f"must have the same channels and cover the valid region {vh}x{vw}"
            )
        a, b = fi[:, :vh, :vw], ft[:, :vh, :vw]
        mses.append(float(((a - b) ** 2).mean()))
        coss.append(float(F.cosine_similarity(a, b, dim=0, eps=1e-8).mean()))
    return float(np.mean(mses)), float(np.mean(coss))


def _chw(f: torch.Tensor) -> torch.Tensor:
    f = torch.as_tensor(f)
    if f.dim() == 4 and f.shape[0] == 1:
        f = f[0]
    if f.dim() != 3:
        raise ValueError(f"expected a Cxhxw or 1xCxhxw feature map, got {tuple(f.shape)}")
    return f.detach()


# ---------------------------------------------------------------------------------- decoding


def image_batch(image) -> torch.Tensor:
    """``HxWx3`` float image in ``[0, 1]`` (numpy or torch) -> ``1x3xHxW`` float32, clamped."""
    x = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    if x.dim() != 3 or x.shape[-1] != 3:
        raise ValueError(f"expected an HxWx3 image, got {tuple(x.shape)}")
    return x.detach().float().clamp(0.0, 1.0).permute(2, 0, 1)[None].contiguous()


@torch.no_grad()
def decode_click(
    teacher, features: Sequence[torch.Tensor], xy: Sequence[float], image_hw: tuple[int, int]
) -> tuple[np.ndarray, float]:
    """One positive click -> ``(mask HxW bool, predicted score)`` with ``multimask_output=False``."""
    from san.teachers.base import Prompts

    out = teacher.decode(features, Prompts.click(float(xy[0]), float(xy[1])), image_hw, multimask_output=False)
    mask = _as_bool(out.masks.reshape(-1, *out.masks.shape[-2:])[0])
    return mask, float(out.scores.reshape(-1)[0])


def decode_clicks(teacher, features, clicks: np.ndarray, image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Every click separately -> ``(masks NxHxW bool, scores N)``."""
    masks, scores = [], []
    for xy in clicks:
        m, s = decode_click(teacher, features, xy, image_hw)
        masks.append(m)
        scores.append(s)
    return np.stack(masks), np.asarray(scores, dtype=np.float64)


# ----------------------------------------------------------------------------------- ceiling


def ceiling_shift_px(image_hw: tuple[int, int], at_1024: float = 8.0) -> int:
    """The ceiling's shift in rendered pixels: ``at_1024 * max(H, W) / 1024``, rounded, at least 1."""
    return max(1, int(round(at_1024 * max(image_hw) / 1024.0)))


def shift_image(image: torch.Tensor, shift: int) -> torch.Tensor:
    """Move ``1x3xHxW`` content ``shift`` pixels right and down; the uncovered border repeats the edge."""
    h, w = image.shape[-2:]
    return F.pad(image, (shift, 0, shift, 0), mode="replicate")[..., :h, :w]


@torch.no_grad()
def shift_ceiling_ious(
    teacher, image, clicks: np.ndarray, shift_px: int, reference_masks: np.ndarray | None = None
) -> np.ndarray:
    """Per-click IoU of the teacher's masks on a shifted rendering against its unshifted masks.

    Args:
        teacher: a :class:`san.teachers.base.Teacher`.
        image: ``HxWx3`` float in ``[0, 1]``.
        clicks: ``Nx2`` ``(x, y)`` pixels in the unshifted image.
        shift_px: shift right and down, in pixels (``>= 1``, smaller than the image).
        reference_masks: the unshifted ``NxHxW`` teacher masks if already decoded.

    Returns:
        ``N`` IoUs computed on the overlap ``[0, H - s) x [0, W - s)`` of the unshifted frame.
    """
    x = image_batch(image)
    h, w = x.shape[-2:]
    s = int(shift_px)
    if not 1 <= s < min(h, w):
        raise ValueError(f"shift_ceiling_ious: shift {s} px does not fit a {h}x{w} image")
    if reference_masks is None:
        reference_masks, _ = decode_clicks(teacher, teacher.encode(x), clicks, (h, w))
    shifted_feats = teacher.encode(shift_image(x, s))
    shifted_masks, _ = decode_clicks(teacher, shifted_feats, np.asarray(clicks, dtype=np.float64) + s, (h, w))
    return np.array([mask_iou(ref[: h - s, : w - s], sh[s:, s:]) for ref, sh in zip(reference_masks, shifted_masks)])


def teacher_shift_ceiling(
    teacher,
    images: Sequence,
    clicks: np.ndarray | Sequence[np.ndarray],
    shift_px: int | None = None,
    at_1024: float = 8.0,
) -> float:
    """Mean IoU of the teacher against itself under a half-patch shift, over all views and clicks.

    Args:
        teacher: a :class:`san.teachers.base.Teacher`.
        images: ``HxWx3`` float renderings in ``[0, 1]``.
        clicks: one ``Nx2`` click array for all views, or one per view.
        shift_px: the shift; ``None`` uses :func:`ceiling_shift_px` of each image.
        at_1024: the shift at SAM's 1024-pixel scale when ``shift_px`` is ``None``.
    """
    per_view = clicks if isinstance(clicks, (list, tuple)) else [clicks] * len(images)
    ious = []
    for image, c in zip(images, per_view):
        hw = tuple(np.asarray(image).shape[:2]) if not isinstance(image, torch.Tensor) else tuple(image.shape[:2])
        s = shift_px if shift_px is not None else ceiling_shift_px(hw, at_1024)
        ious.append(shift_ceiling_ious(teacher, image, c, s))
    return float(np.concatenate(ious).mean())


# ------------------------------------------------------------------------------ the evaluation


@dataclass
class ViewResult:
    """Everything measured on one view.

    Attributes:
        view: :attr:`EvalView.index`; ``name`` its image stem.
        clicks: ``Nx2`` ``(x, y)`` pixels.
        ious, teacher_area, imitation_area, score, teacher_score: per click (``N``); areas in
            pixels, scores are the decoder's predicted IoU for the imitation / teacher mask.
        feature_mse, feature_cosine: feature agreement on the valid region.
        ceiling_ious: per-click teacher shift-ceiling IoUs, or ``None`` when not computed.
        image: ``HxWx3`` float rendering, kept only for the first views (qualitative figure).
        teacher_masks, imitation_masks: ``NxHxW`` bool, kept with ``image``.
    """

    view: int
    name: str
    clicks: np.ndarray
    ious: np.ndarray
    teacher_area: np.ndarray
    imitation_area: np.ndarray
    score: np.ndarray
    teacher_score: np.ndarray
    feature_mse: float
    feature_cosine: float
    ceiling_ious: np.ndarray | None = None
    text_ious: dict[str, float] | None = None
    text_areas: dict[str, tuple[int, int]] | None = None
    image: np.ndarray | None = None
    teacher_masks: np.ndarray | None = field(default=None, repr=False)
    imitation_masks: np.ndarray | None = field(default=None, repr=False)

    @property
    def mask_iou(self) -> float:
        return float(self.ious.mean())


def evaluate_views(
    teacher,
    render_rgb_fn: Callable[[Any], Any],
    render_features_fn: Callable[[Any], Sequence[torch.Tensor]],
    views: Sequence[NamedView],
    grid: int = 5,
    ceiling_shift: int | Callable[[tuple[int, int]], int] | None = None,
    keep: int = 3,
    texts: Sequence[str] = (),
) -> list[ViewResult]:
    """Run the protocol on ``views`` with callbacks for the two renderers.

    Args:
        teacher: a :class:`san.teachers.base.Teacher` (its encoder makes the reference, its
            decoder decodes both pipelines).
        render_rgb_fn: ``view -> HxWx3`` float image in ``[0, 1]`` (the NeRF rendering).
        render_features_fn: ``view -> list of Cxhxw`` imitated maps, one per teacher map, in the
            teacher's layout (padded square, or only the valid top-left region).
        views: :class:`NamedView` s (the :class:`EvalView` s of :func:`evaluation_views`), passed
            to the callbacks as they are; ``view.index`` and ``view.name`` label the results.
        grid: clicks per side.
        ceiling_shift: shift in pixels for the teacher shift ceiling, or a function of the image
            ``(H, W)`` giving it; ``None`` skips the ceiling.
        keep: keep the image and masks of the first ``keep`` views (for the qualitative figure).
        texts: text prompts decoded in every view (protocol step 7).

    Returns:
        One :class:`ViewResult` per view, in order.
    """
    results = []
    for pos, view in enumerate(views):
        index, name = int(view.index), str(view.name)
        image = render_rgb_fn(view)
        x = image_batch(image)
        h, w = int(x.shape[-2]), int(x.shape[-1])
        with torch.no_grad():
            teacher_feats = teacher.encode(x)
            imitated = list(render_features_fn(view))
        mse, cos = feature_agreement(imitated, teacher_feats, teacher.valid_hw((h, w)))
        clicks = click_grid(w, h, grid)
        t_masks, t_scores = decode_clicks(teacher, teacher_feats, clicks, (h, w))
        i_masks, i_scores = decode_clicks(teacher, imitated, clicks, (h, w))
        ious = np.array([mask_iou(a, b) for a, b in zip(t_masks, i_masks)])
        ceiling = None
        if ceiling_shift is not None:
            s = ceiling_shift((h, w)) if callable(ceiling_shift) else int(ceiling_shift)
            ceiling = shift_ceiling_ious(teacher, x[0].permute(1, 2, 0), clicks, s, reference_masks=t_masks)
        text_ious, text_areas = None, None
        if texts:
            from san.teachers.base import Prompts

            text_ious, text_areas = {}, {}
            for text in texts:
                a = teacher.decode(teacher_feats, Prompts(text=text), (h, w)).masks[0].cpu().numpy()
                b = teacher.decode(imitated, Prompts(text=text), (h, w)).masks[0].cpu().numpy()
                text_ious[text] = mask_iou(a, b)
                text_areas[text] = (int(a.sum()), int(b.sum()))
        kept = pos < keep
        results.append(
            ViewResult(
                view=index,
                name=name,
                clicks=clicks,
                ious=ious,
                teacher_area=t_masks.reshape(len(clicks), -1).sum(1),
                imitation_area=i_masks.reshape(len(clicks), -1).sum(1),
                score=i_scores,
                teacher_score=t_scores,
                feature_mse=mse,
                feature_cosine=cos,
                ceiling_ious=ceiling,
                text_ious=text_ious,
                text_areas=text_areas,
                image=x[0].permute(1, 2, 0).cpu().numpy() if kept else None,
                teacher_masks=t_masks if kept else None,
                imitation_masks=i_masks if kept else None,
            )
        )
        log.info(
            "view %s (%s): mask IoU %.4f | feature MSE %.4g | cosine %.4f%s",
            index,
            name,
            results[-1].mask_iou,
            mse,
            cos,
            ("" if ceiling is None else f" | ceiling {ceiling.mean():.4f}")
            + ("" if not text_ious else f" | text IoU {np.mean(list(text_ious.values())):.4f}"),
        )
    return results


def click_rows(results: Sequence[ViewResult]) -> list[dict]:
    """One row per click with the columns of :data:`CLICK_COLUMNS` (for ``clicks.csv``)."""
    rows = []
    for r in results:
        for k, (x, y) in enumerate(r.clicks):
            rows.append(
                {
                    "view": r.view,
                    "click": k,
                    "x": float(x),
                    "y": float(y),
                    "iou": float(r.ious[k]),
                    "teacher_area": int(r.teacher_area[k]),
                    "imitation_area": int(r.imitation_area[k]),
                    "score": float(r.score[k]),
                    "teacher_score": float(r.teacher_score[k]),
                }
            )
    return rows


TEXT_COLUMNS = ("view", "text", "iou", "teacher_area", "imitation_area")


def text_rows(results: Sequence[ViewResult]) -> list[dict]:
    """One row per (view, text) with the columns of :data:`TEXT_COLUMNS` (``metrics.json``'s ``texts``)."""
    return [
        {
            "view": r.view,
            "text": t,
            "iou": iou,
            "teacher_area": r.text_areas[t][0],
            "imitation_area": r.text_areas[t][1],
        }
        for r in results
        if r.text_ious
        for t, iou in r.text_ious.items()
    ]


def summarize(results: Sequence[ViewResult]) -> dict:
    """Scene-level numbers: mean IoU (over views of per-view means), feature MSE / cosine, ceiling."""
    if not results:
        raise ValueError("summarize: no views were evaluated")
    ceilings = [r.ceiling_ious for r in results if r.ceiling_ious is not None]
    texts = [r for r in results if r.text_ious]
    text = {}
    if texts:
        text = {
            "text_iou": float(np.mean([np.mean(list(r.text_ious.values())) for r in texts])),
            "text_prompts": list(texts[0].text_ious),
            "n_text_masks": int(sum(len(r.text_ious) for r in texts)),
        }
    return {
        **text,
        "mask_iou": float(np.mean([r.mask_iou for r in results])),
        "feature_mse": float(np.mean([r.feature_mse for r in results])),
        "feature_cosine": float(np.mean([r.feature_cosine for r in results])),
        "iou_ceiling": float(np.mean([c.mean() for c in ceilings])) if ceilings else None,
        "n_views": len(results),
        "n_clicks": int(sum(len(r.clicks) for r in results)),
        "per_view": [
            {
                "view": r.view,
                "name": r.name,
                "mask_iou": r.mask_iou,
                "feature_mse": r.feature_mse,
                "feature_cosine": r.feature_cosine,
                "iou_ceiling": None if r.ceiling_ious is None else float(r.ceiling_ious.mean()),
                **({"text_iou": float(np.mean(list(r.text_ious.values())))} if r.text_ious else {}),
            }
            for r in results
        ],
    }
