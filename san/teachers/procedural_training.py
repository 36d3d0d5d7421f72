"""Training and evaluation of ``sam_tiny_procedural`` (SAM's recipe on procedural scenes).

Recipe (SAM paper, section 3 and appendix A, scaled down; :class:`TrainConfig` holds the numbers):

* data: ``train_scenes`` seeded scenes (:func:`san.data.procedural.training_seeds`, never a
  held-out seed) x ``views_per_scene`` views, rendered once (in ``workers`` processes), resized to
  the 256 px input as :meth:`Teacher.preprocess` does; many prompts are sampled per image;
* a step: ``batch_images`` images through the image encoder (random horizontal flips of the
  unpadded part), then
  ``targets_per_image`` segments per image (objects, ground and sky alike) through the prompt
  encoder and mask decoder for ``1 + corrective_rounds`` rounds:

  - round 0: a positive click uniform inside the segment, or (``box_fraction``) its bounding box
    with noise of std 10 % of the side (at most 5 px at 256 px, SAM's 20 px at 1024);
  - rounds 1..: one more click drawn uniformly from the error region of the previous mask
    (positive on a false negative, negative on a false positive), the previous mask's logits fed
    back as the mask prompt (detached);
  - multimask output with the minimum-loss mask for the single click of round 0 (SAM). Unlike
    SAM, the single-output token 0 is also trained on that click, because the pipeline decodes
    single clicks with ``multimask_output=False`` (5x5 protocol, viewer); boxes and multi-click
    rounds use token 0 alone, as SAM does;
* loss per mask = ``20 * focal + dice`` (SAM's 20:1; focal alpha 0.25, gamma 2) on the
  logits resized to ``loss_size`` against the area-averaged ground truth, over the image's valid
  (unpadded) pixels, plus the IoU head's MSE to
  the actual IoU of every output mask; AdamW with linear warm-up and cosine decay.

:func:`evaluate_views` measures the bars through the public :class:`~san.teachers.base.Teacher`
API (the product's own decode path, ``multimask_output=False``).
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from san.teachers.procedural import ARCH, build_procedural_sam

log = logging.getLogger("san")

MAX_ID = 16  # ids per image considered for targets (sky 0, ground 1, objects 2..9)
PAD_ID = 255


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe (defaults: the shipped weights' recipe).

    Attributes:
        seed: seeds the scene list offset, model init and prompt sampling.
        train_scenes: number of training scenes; ``views_per_scene`` views each.
        steps: optimiser steps.
        batch_images: images per step (image-encoder batch).
        targets_per_image: segments prompted per image per step.
        corrective_rounds: rounds of error-region clicks after the first prompt.
        box_fraction: share of first prompts that are boxes (the rest single clicks).
        lr, weight_decay, warmup_steps: AdamW; cosine decay to ``0.05 * lr`` after the warm-up.
        min_target_px: segments smaller than this (at the 256 px input) are not prompted.
        loss_size: side at which mask losses are computed (logits bilinearly resized, ground
            truth area-averaged into soft targets); 64 is the decoder's own low-res output.
    """

    seed: int = 0
    train_scenes: int = 600
    views_per_scene: int = 3
    steps: int = 6000
    batch_images: int = 8
    targets_per_image: int = 3
    corrective_rounds: int = 2
    box_fraction: float = 0.5
    lr: float = 6e-4
    weight_decay: float = 0.05
    warmup_steps: int = 150
    min_target_px: int = 24
    loss_size: int = 64


# ---------------------------------------------------------------------------------------------
# data


def to_training_arrays(views, input_size: int = ARCH.input_size) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize views as :meth:`Teacher.preprocess` does (longest side -> ``input_size``, bilinear
    antialiased for RGB; nearest for ids) and pad bottom/right.

    Returns:
        ``(images Nx3xSxS uint8 (padding 0), ids NxSxS uint8 (padding 255))``.
    """
    from san.teachers.base import resized_hw

    n, s = len(views), input_size
    images = torch.zeros(n, 3, s, s, dtype=torch.uint8)
    ids = torch.full((n, s, s), PAD_ID, dtype=torch.uint8)
    for i, v in enumerate(views):
        h, w = v.ids.shape
        rh, rw = resized_hw((h, w), s)
        x = torch.from_numpy(v.rgb).permute(2, 0, 1)[None].float()
        x = F.interpolate(x, (rh, rw), mode="bilinear", align_corners=False, antialias=True)
        images[i, :, :rh, :rw] = x[0].round().clamp(0, 255).to(torch.uint8)
        m = torch.from_numpy(v.ids)[None, None].float()
        ids[i, :rh, :rw] = F.interpolate(m, (rh, rw), mode="nearest")[0, 0].to(torch.uint8)
    return images, ids


# ---------------------------------------------------------------------------------------------
# losses


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
):
    """Sigmoid focal loss averaged over valid pixels; ``logits``/``target`` ``...xHxW``, ``valid``
    broadcastable. Returns ``...``."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    a_t = alpha * target + (1 - alpha) * (1 - target)
    loss = a_t * ce * (1 - p_t) ** gamma * valid
    return loss.flatten(-2).sum(-1) / valid.flatten(-2).sum(-1).clamp_min(1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits) * valid
    num = 2 * (p * target).flatten(-2).sum(-1) + 1
    den = p.flatten(-2).sum(-1) + target.flatten(-2).sum(-1) + 1
    return 1 - num / den


def mask_iou(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    pred = pred & valid
    inter = (pred & target).flatten(-2).sum(-1).float()
    union = (pred | target).flatten(-2).sum(-1).float()
    return inter / union.clamp_min(1)


# ---------------------------------------------------------------------------------------------
# prompts


def _sample_pixels(weights: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One pixel per row of ``weights`` (``MxHxW`` >= 0, rows with zero mass use uniform) ->
    ``Mx2`` input-frame coordinates ``(x, y)`` (SAM's prompt encoder adds 0.5 itself)."""
    m, h, w = weights.shape
    cdf = weights.reshape(m, -1).float().cumsum(-1)  # inverse-CDF sampling (multinomial is ~100x slower here)
    total = cdf[:, -1:]
    cdf = torch.where(total > 0, cdf, torch.arange(1, h * w + 1, device=cdf.device, dtype=cdf.dtype).expand_as(cdf))
    u = torch.rand(m, 1, generator=generator, device=weights.device) * cdf[:, -1:]
    idx = torch.searchsorted(cdf, u, right=True)[:, 0].clamp_max(h * w - 1)
    y, x = idx // w, idx % w
    return torch.stack([x, y], -1).float()


def _boxes(gt: torch.Tensor, generator: torch.Generator, noise: bool) -> torch.Tensor:
    """``Mx4`` boxes ``(x0, y0, x1, y1)`` in the input frame (corner coordinates minus 0.5)."""
    m, h, w = gt.shape
    cols, rows = gt.any(1), gt.any(2)
    ar_w = torch.arange(w, device=gt.device)
    ar_h = torch.arange(h, device=gt.device)
    x0 = torch.where(cols, ar_w, w).amin(1).float()
    x1 = torch.where(cols, ar_w, -1).amax(1).float() + 1
    y0 = torch.where(rows, ar_h, h).amin(1).float()
    y1 = torch.where(rows, ar_h, -1).amax(1).float() + 1
    box = torch.stack([x0, y0, x1, y1], -1)
    if noise:
        side = torch.stack([x1 - x0, y1 - y0, x1 - x0, y1 - y0], -1)
        std = (0.1 * side).clamp_max(5.0)
        box = box + torch.randn(box.shape, generator=generator, device=gt.device) * std
        box = torch.stack(
            [torch.minimum(box[:, 0], box[:, 2] - 1), torch.minimum(box[:, 1], box[:, 3] - 1), box[:, 2], box[:, 3]], -1
        )
    return box - 0.5


# ---------------------------------------------------------------------------------------------
# one step


def decode_batch(sam, embeddings: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor):
    """SAM's ``MaskDecoder.predict_masks`` over ``M`` prompts with their own image embeddings.

    ``predict_masks`` broadcasts one image's embedding over all prompts; passing a zero
    embedding and adding the per-prompt embeddings to the dense prompt embedding gives the same
    ``src`` (``embedding + dense``) per prompt, with segment-anything's own code.

    Args:
        embeddings: ``MxCxhxw`` image embedding of each prompt's image.
        sparse, dense: prompt encoder outputs (``MxTxC``, ``MxCxhxw``).

    Returns:
        ``(low-res logits Mx(1+K)x4hx4w, predicted IoU Mx(1+K))``, all output tokens.
    """
    zero = embeddings.new_zeros(1, *embeddings.shape[1:])
    return sam.mask_decoder.predict_masks(
        image_embeddings=zero,
        image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense + embeddings,
    )


def training_step(
    sam, images: torch.Tensor, ids: torch.Tensor, config: TrainConfig, generator: torch.Generator, amp: bool = False
):
    """Loss of one step (see the module docstring) on a batch.

    Args:
        images: ``Bx3xSxS`` uint8, ids: ``BxSxS`` uint8 (255 = padding), on the model's device.

    Returns:
        ``(loss scalar tensor, dict of detached scalar tensors: focal, dice, iou_mse, iou_first,
        iou_last)``.
    """
    dev = images.device
    b, s = images.shape[0], images.shape[-1]
    # horizontal flips of the image part only (padding stays at the right, as at inference)
    flip = torch.rand(b, generator=generator, device=dev) < 0.5
    width = (ids != PAD_ID).any(1).sum(1)  # B: valid columns
    cols = torch.arange(s, device=dev).expand(b, s)
    src = torch.where(flip[:, None] & (cols < width[:, None]), width[:, None] - 1 - cols, cols)
    ids = ids.gather(2, src[:, None, :].expand(b, s, s))
    images = images.gather(3, src[:, None, None, :].expand(b, 3, s, s))
    valid = ids != PAD_ID
    x = (images.float() - sam.pixel_mean) / sam.pixel_std * valid[:, None]

    # targets: segments present with at least min_target_px pixels
    counts = torch.stack([(ids == i).flatten(1).sum(1) for i in range(MAX_ID)], 1)
    present = (counts >= config.min_target_px).float()
    present[:, 0] += (present.sum(1) == 0).float()  # never empty (cannot happen with a dome)
    k = config.targets_per_image
    target_id = torch.multinomial(present, k, replacement=True, generator=generator)  # BxK
    gt = ids[:, None] == target_id[:, :, None, None].to(ids.dtype)  # BxKxSxS
    gt = gt.flatten(0, 1)
    m = gt.shape[0]
    valid_m = valid.repeat_interleave(k, 0)
    # loss resolution: ground truth area-averaged to loss_size (soft targets at the boundary)
    ls = config.loss_size
    gt_soft = F.interpolate(gt[:, None].float(), (ls, ls), mode="area")[:, 0]
    valid_soft = F.interpolate(valid_m[:, None].float(), (ls, ls), mode="area")[:, 0]
    gt_hard, valid_hard = gt_soft > 0.5, valid_soft > 0.5

    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp)
    with autocast:
        emb = sam.image_encoder(x).repeat_interleave(k, 0)
    emb = emb.float()
    pe = sam.prompt_encoder
    use_box = torch.rand(m, generator=generator, device=dev) < config.box_fraction
    first = _sample_pixels(gt, generator)[:, None]  # Mx1x2
    box = _boxes(gt, generator, noise=True)
    ones = torch.ones(m, 1, dtype=torch.long, device=dev)
    corr_pts = torch.zeros(m, 0, 2, device=dev)
    corr_lab = torch.zeros(m, 0, dtype=torch.long, device=dev)
    mask_in = None
    total = torch.zeros((), device=dev)
    stats = {"focal": 0.0, "dice": 0.0, "iou_mse": 0.0, "iou_first": 0.0, "iou_last": 0.0}
    rounds = 1 + config.corrective_rounds
    for r in range(rounds):
        with autocast:
            click_pts = torch.cat([first, corr_pts], 1)
            click_lab = torch.cat([ones, corr_lab], 1)
            sp_click, dense = pe(points=(click_pts, click_lab), boxes=None, masks=mask_in)
            if r == 0:
                sp_box, _ = pe(points=None, boxes=box, masks=None)
            else:
                sp_box, _ = pe(points=(corr_pts, corr_lab), boxes=box, masks=mask_in)
            sparse = torch.where(use_box[:, None, None], sp_box, sp_click)
            low, iou_pred = decode_batch(sam, emb, sparse.float(), dense.float())
        low, iou_pred = low.float(), iou_pred.float()
        logits = low if low.shape[-1] == ls else F.interpolate(low, (ls, ls), mode="bilinear", align_corners=False)
        target = gt_soft[:, None].expand_as(logits)
        focal = focal_loss(logits, target, valid_soft[:, None])
        dice = dice_loss(logits, target, valid_soft[:, None])
        per_mask = 20 * focal + dice  # Mx4
        with torch.no_grad():
            actual_iou = mask_iou(logits > 0, gt_hard[:, None], valid_hard[:, None])
        iou_mse = F.mse_loss(iou_pred, actual_iou, reduction="none").mean(-1)
        if r == 0:
            best = per_mask[:, 1:].argmin(1) + 1
            multi = per_mask.gather(1, best[:, None])[:, 0]
            single = per_mask[:, 0]
            mask_loss = torch.where(use_box, single, single + multi)
            chosen = torch.where(use_box, torch.zeros_like(best), best)
        else:
            mask_loss = per_mask[:, 0]
            chosen = torch.zeros(m, dtype=torch.long, device=dev)
        total = total + (mask_loss + iou_mse).mean() / rounds
        low_sel = low.gather(1, chosen[:, None, None, None].expand(-1, 1, *low.shape[-2:])).detach()
        sel_iou = actual_iou.gather(1, chosen[:, None])[:, 0]
        # statistics stay on the device (no host sync per step); train() averages them per log line
        stats["focal"] = stats["focal"] + focal[:, 0].detach().mean() / rounds
        stats["dice"] = stats["dice"] + dice[:, 0].detach().mean() / rounds
        stats["iou_mse"] = stats["iou_mse"] + iou_mse.detach().mean() / rounds
        if r == 0:
            stats["iou_first"] = sel_iou.mean()
        stats["iou_last"] = sel_iou.mean()
        if r + 1 < rounds:
            pred = F.interpolate(low_sel, (s, s), mode="bilinear", align_corners=False)[:, 0] > 0
            fn = gt & ~pred
            fp = ~gt & pred & valid_m
            err = fn | fp
            new = _sample_pixels(err, generator)
            xi, yi = new[:, 0].long(), new[:, 1].long()
            positive = gt[torch.arange(m, device=dev), yi, xi]
            corr_pts = torch.cat([corr_pts, new[:, None]], 1)
            corr_lab = torch.cat([corr_lab, positive.long()[:, None]], 1)
            mask_in = low_sel
    return total, stats


def lr_at(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    frac = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def train(
    images: torch.Tensor,
    ids: torch.Tensor,
    config: TrainConfig,
    device: torch.device,
    curve_path: str | os.PathLike | None = None,
    resume_path: str | os.PathLike | None = None,
    checkpoint_every: int = 500,
    amp: bool = False,
    log_every: int = 50,
):
    """Train from scratch (or resume from ``resume_path``) and return the model (eval mode, CPU).

    ``images``/``ids`` are the whole training set (``to_training_arrays``); they are moved to
    ``device`` once. Writes the training curve to ``curve_path`` (CSV, appended per log line).
    """
    torch.manual_seed(config.seed)
    sam = build_procedural_sam().to(device).train()
    images, ids = images.to(device), ids.to(device)
    opt = torch.optim.AdamW(
        sam.parameters(),
        lr=config.lr,
        weight_decay=config.weight_decay,
        betas=(0.9, 0.999),
        fused=device.type == "cuda",
    )  # one kernel for all parameters on the GPU
    gen = torch.Generator(device=device)
    gen.manual_seed(config.seed + 1)
    start = 0
    rows: list[dict] = []
    if resume_path is not None and Path(resume_path).is_file():
        ck = torch.load(resume_path, map_location=device, weights_only=False)
        sam.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"].cpu() if device.type == "cpu" else ck["gen"].cpu())
        start, rows = ck["step"], ck["rows"]
        log.info("train_procedural_teacher: resumed at step %d from %s", start, resume_path)
    n = images.shape[0]
    t0 = time.perf_counter()
    window: list[dict] = []
    for step in range(start, config.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, config)
        idx = torch.randint(n, (config.batch_images,), generator=gen, device=device)
        loss, stats = training_step(sam, images[idx], ids[idx], config, gen, amp=amp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sam.parameters(), 1.0)
        opt.step()
        window.append({"loss": loss.detach(), **stats})
        if (step + 1) % log_every == 0 or step + 1 == config.steps:
            mean = {
                k: float(torch.stack([torch.as_tensor(w[k], device=device) for w in window]).float().mean())
                for k in window[0]
            }
            window = []
            elapsed = time.perf_counter() - t0
            rows.append(
                {
                    "step": step + 1,
                    "lr": lr_at(step, config),
                    "elapsed_s": round(elapsed, 2),
                    **{k: round(v, 5) for k, v in mean.items()},
                }
            )
            rate = (step + 1 - start) / max(elapsed, 1e-9)
            log.info(
                "train step %d/%d | loss %.4f | iou first %.3f last %.3f | %.2f it/s | ETA %.0fs",
                step + 1,
                config.steps,
                mean["loss"],
                mean["iou_first"],
                mean["iou_last"],
                rate,
                (config.steps - step - 1) / max(rate, 1e-9),
            )
            if curve_path is not None:
                write_curve(curve_path, rows)
        if (
            resume_path is not None
            and checkpoint_every
            and (step + 1) % checkpoint_every == 0
            and step + 1 < config.steps
        ):
            from san.utils.io import atomic_path

            with atomic_path(resume_path) as tmp:
                torch.save(
                    {
                        "model": sam.state_dict(),
                        "opt": opt.state_dict(),
                        "gen": gen.get_state(),
                        "step": step + 1,
                        "rows": rows,
                    },
                    tmp,
                )
    return sam.eval().cpu(), rows


def write_curve(path: str | os.PathLike, rows: Sequence[dict]) -> None:
    from san.utils.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


# ---------------------------------------------------------------------------------------------
# evaluation


def _interior_point(mask: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """A random pixel centre of ``mask`` at least one pixel from its boundary when possible."""
    from scipy.ndimage import binary_erosion

    inner = binary_erosion(mask, iterations=1)
    ys, xs = np.nonzero(inner if inner.any() else mask)
    i = int(rng.integers(len(ys)))
    return float(xs[i]) + 0.5, float(ys[i]) + 0.5


@torch.no_grad()
def evaluate_views(teacher, views, seed: int = 0, min_area_px: int = 100, object_ids_from: int = 2) -> dict:
    """The bars on ``views`` (each with ``rgb HxWx3 uint8``, ``ids HxW``, ``seed`` and ``view``, as
    :class:`san.data.procedural.dataset.RenderedView`; demo views have seed -1) through the
    teacher's own API.

    For every segment with at least ``min_area_px`` pixels: one positive click at a random
    interior pixel, and the tight bounding box, each decoded with ``multimask_output=False`` (the
    bars' figures, ``click_miou`` / ``box_miou``); IoU with the ground-truth mask at the view's
    resolution. The same click is also decoded with ``multimask_output=True``, SAM's convention for
    an ambiguous single click (``SamPredictor.predict``'s advice): ``click_multimask_miou`` keeps the
    candidate with the highest predicted IoU (what a user gets), ``click_oracle_miou`` the candidate
    closest to the ground truth (the SAM paper's "oracle", an upper bound, not a usable figure).

    Returns:
        ``{"objects": {"n", "click_miou", "box_miou", "click_multimask_miou", "click_oracle_miou"},
        "ground_sky": {...}, "per_segment": [...]}`` (objects: ids ``>= object_ids_from``).
    """
    from san.teachers.base import Prompts

    rng = np.random.default_rng(seed)
    records = []
    for v in views:
        image = torch.from_numpy(v.rgb).permute(2, 0, 1).float()[None] / 255.0
        features = teacher.encode(image)
        f = [x[0] for x in features]
        hw = v.ids.shape
        for sid in np.unique(v.ids):
            mask = v.ids == sid
            if mask.sum() < min_area_px:
                continue
            x, y = _interior_point(mask, rng)
            click = teacher.decode(f, Prompts.click(x, y), hw).masks[0].cpu().numpy()
            multi = teacher.decode(f, Prompts.click(x, y), hw, multimask_output=True)
            candidates = multi.masks.cpu().numpy()
            ys, xs = np.nonzero(mask)
            boxm = (
                teacher.decode(f, Prompts.from_box(xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0), hw)
                .masks[0]
                .cpu()
                .numpy()
            )
            iou = lambda p, m=mask: float((p & m).sum() / max(1, (p | m).sum()))  # noqa: E731
            records.append(
                {
                    "seed": int(v.seed),
                    "view": int(v.view),
                    "id": int(sid),
                    "area_px": int(mask.sum()),
                    "click_iou": iou(click),
                    "box_iou": iou(boxm),
                    "click_multimask_iou": iou(candidates[int(multi.scores.argmax())]),
                    "click_oracle_iou": max(iou(c) for c in candidates),
                }
            )

    def summary(rs):
        keys = ("click", "box", "click_multimask", "click_oracle")
        return {"n": len(rs)} | {f"{k}_miou": float(np.mean([r[f"{k}_iou"] for r in rs])) if rs else None for k in keys}

    return {
        "objects": summary([r for r in records if r["id"] >= object_ids_from]),
        "ground_sky": summary([r for r in records if r["id"] < object_ids_from]),
        "min_area_px": min_area_px,
        "views": len(views),
        "per_segment": records,
    }


class _DemoView:
    def __init__(self, k: int, rgb: np.ndarray, ids: np.ndarray):
        self.seed, self.view, self.rgb, self.ids = -1, k, rgb, ids


def _render_demo(k: int):
    from san.data.config import DemoSceneConfig
    from san.data.demo import demo_cameras, demo_intrinsics, render_demo_view

    torch.set_num_threads(1)
    config = DemoSceneConfig()
    v = render_demo_view(demo_cameras(config)[k], demo_intrinsics(config), config.width, config.height, config)
    return _DemoView(k, np.round(v["rgb"] * 255).astype(np.uint8), v["ids"])


def demo_views(workers: int = 1) -> list:
    """The demo scene's 48 views (192 px, default :class:`DemoSceneConfig`) with ids."""
    import multiprocessing as mp

    from san.data.config import DemoSceneConfig

    n = DemoSceneConfig().num_views
    if workers <= 1:
        return [_render_demo(k) for k in range(n)]
    with mp.get_context("spawn").Pool(workers) as pool:
        return pool.map(_render_demo, range(n))


def write_json(path, obj) -> None:
    from san.utils.io import atomic_write_json

    atomic_write_json(path, obj)


def config_dict(config: TrainConfig) -> dict:
    return asdict(config)


__all__ = [
    "TrainConfig",
    "config_dict",
    "decode_batch",
    "demo_views",
    "dice_loss",
    "evaluate_views",
    "focal_loss",
    "to_training_arrays",
    "train",
    "training_step",
    "write_curve",
    "write_json",
]
