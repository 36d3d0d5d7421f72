"""The feature-imitation training loop (paper Sec. 4.1-4.3), independent of files and of the NeRF class.

One step:

1. :func:`~san.imitation.fifo.draw_view` picks the view: a cached one, or (probability
   ``fresh_fraction``) a fresh camera (an interpolated one with ``augment``, else a training
   camera) rendered by ``render_fn`` and encoded by the teacher; the teacher call is counted.
2. For every teacher map, the view's feature camera (:func:`~san.imitation.geometry.feature_camera`)
   gives one ray per valid cell; ``geometry_fn`` turns rays into frozen geometry (NeRF weights and
   positions, or one mesh surface point), cached per view with ``cache_geometry``.
3. ``rays_per_step`` random valid cells per map are rendered by the model and compared with the
   teacher's features there: ``sum_i MSE + correlation_weight * L_cross`` (Eq. 8-11).

Everything random comes from one ``numpy`` generator (views, cameras) and one ``torch`` generator
(ray subsets) seeded from ``seed``; :meth:`ImitationTrainer.state_dict` captures both with the
model, optimiser, schedule, FIFO and counters, so a resumed run ends in the same state as an
uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch

from san.cameras import Camera, RayBundle
from san.features.augment import camera_at_size, sample_augmented_cameras
from san.imitation.config import TrainImitationConfig, VariantConfig
from san.imitation.fifo import FeatureFIFO, ViewEntry, draw_view
from san.imitation.geometry import RayGeometry, feature_camera, feature_rays
from san.imitation.losses import imitation_loss
from san.imitation.model import ImitationModel
from san.models.base import RadianceModel
from san.teachers.base import Teacher
from san.utils.training import TrainingLoop, every_or_last, load_optimizer_state, optimizer_step, resume_checkpoint

if TYPE_CHECKING:
    from san.features.cache import FeatureCache

log = logging.getLogger("san")

GeometryFn = Callable[[RayBundle], RayGeometry]
"""Rays (on the training device) -> frozen :class:`RayGeometry`."""
RenderFn = Callable[[Camera], torch.Tensor]
"""``camera -> HxWx3`` float RGB in ``[0, 1]`` (the NeRF's rendering): one unbatched
:class:`~san.cameras.Camera` (``c2w 4x4`` OpenCV camera-to-world in the normalised frame, ``K 3x3`` in
pixels, float64), as :data:`san.features.build.RenderFn` takes."""

CURVE_COLUMNS = ("step", "loss", "mse", "corr", "cosine", "lr", "teacher_calls", "fresh_views", "wall_s")
PAD_EMA = 0.99


def cached_view_entry(cache: FeatureCache, index: int) -> ViewEntry:
    """Row ``index`` of an open :class:`san.features.cache.FeatureCache` as a FIFO entry."""
    h, w = (int(v) for v in cache.image_hw[index])
    return ViewEntry(
        torch.as_tensor(np.asarray(cache.c2w[index]), dtype=torch.float32),
        torch.as_tensor(np.asarray(cache.K[index]), dtype=torch.float32),
        w,
        h,
        [torch.from_numpy(np.asarray(f, dtype=np.float16)) for f in cache.features(index)],
        bool(cache.is_augmented[index]),
        int(index),
    )


def cached_rows(cache: FeatureCache, augment: bool) -> list[int]:
    """The cache rows a variant may train on: all, or only training views without augmentation."""
    flags = np.asarray(cache.is_augmented, dtype=bool)
    return [int(i) for i in range(len(flags)) if augment or not flags[i]]


@dataclass
class Counters:
    """Work done so far (checkpointed)."""

    teacher_calls: int = 0
    fresh_views: int = 0
    cached_draws: int = 0
    wall_s: float = 0.0
    teacher_s: float = 0.0
    render_s: float = 0.0
    geometry_s: float = 0.0


class ImitationTrainer:
    """Trains an :class:`ImitationModel` against a teacher (see the module docstring).

    Args:
        model: the model to train (on ``device``).
        config: the ``imitation:`` section.
        variant: the ablation switches (augmentation, fresh fraction, correlation loss).
        geometry_fn: rays -> frozen geometry (volume or mesh surface).
        teacher: ``encode(Bx3xHxW) -> list[BxCxhxw]`` and ``info`` (``input_size``, ``feature_shapes``).
        render_fn: renders a fresh view for the teacher (may be ``None`` when ``fresh_fraction`` is 0).
        train_cameras: the training cameras (fresh views without augmentation; pairs to interpolate).
        load_cached: ``index -> ViewEntry`` reader of the HDF5 feature cache rows.
        cached_indices: the HDF5 rows that may seed the FIFO (already filtered by the caller).
        render_size: longest side of fresh renderings.
        seed: seeds every random choice.
        device: training device.
    """

    def __init__(
        self,
        model: ImitationModel,
        *,
        config: TrainImitationConfig,
        variant: VariantConfig,
        geometry_fn: GeometryFn,
        teacher: Teacher,
        render_fn: RenderFn | None,
        train_cameras: Sequence[Camera],
        load_cached: Callable[[int], ViewEntry] | None = None,
        cached_indices: Sequence[int] = (),
        render_size: int = 512,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.model, self.config, self.variant = model, config, variant
        self.geometry_fn, self.teacher, self.render_fn = geometry_fn, teacher, render_fn
        self.train_cameras = list(train_cameras)
        self.load_cached = load_cached
        self.render_size = int(render_size)
        self.device = torch.device(device)
        self.input_size = int(teacher.info.input_size)
        self.feature_shapes = tuple(tuple(s) for s in teacher.info.feature_shapes)
        if tuple(model.feature_shapes) != self.feature_shapes:
            raise ValueError(f"model feature shapes {model.feature_shapes} != teacher's {self.feature_shapes}")
        if variant.fresh_fraction > 0 and render_fn is None:
            raise ValueError("fresh_fraction > 0 needs a render_fn to render fresh views")
        if variant.fresh_fraction > 0 and not self.train_cameras:
            raise ValueError("fresh_fraction > 0 needs training cameras")
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.fifo = FeatureFIFO(config.cache_capacity)
        self.counters = Counters()
        self.step = 0
        self.curve: list[dict[str, float]] = []
        self.first_metrics: dict[str, float] | None = None
        self.pad_seen = [0] * model.num_maps
        self._window: list[dict[str, float]] = []
        self.optimizer = torch.optim.Adam(
            [
                {"params": list(model.field.parameters()), "lr": config.lr_grid},
                {"params": list(model.heads.parameters()), "lr": config.lr_head},
            ],
            betas=(0.9, 0.99),
            eps=1e-15,
            fused=True,  # one kernel over the large hash tables: ~10x faster than the loop on CPU
        )
        ratio, total = config.lr_final_ratio, config.steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: ratio ** (min(s, total) / total))
        seed_rows = list(cached_indices)
        if len(seed_rows) > config.cache_capacity:
            seed_rows = sorted(self.rng.choice(seed_rows, config.cache_capacity, replace=False).tolist())
        if seed_rows and load_cached is None:
            raise ValueError("cached_indices given without load_cached")
        for i in seed_rows:
            self.fifo.push(load_cached(int(i)))
        self.seeded_views = len(seed_rows)
        if config.init_from_teacher and len(self.fifo):
            self._init_from_teacher(list(self.fifo))

    @torch.no_grad()
    def _init_from_teacher(self, entries: Sequence[ViewEntry]) -> None:
        """Heads start at the teacher's per-channel mean / std over the valid cells of ``entries``."""
        means, stds = [], []
        for i, (c, h, w) in enumerate(self.feature_shapes):
            values = []
            for e in entries:
                vh, vw = feature_camera(e.K, e.width, e.height, self.input_size, (h, w)).valid_hw
                values.append(e.features[i][:, :vh, :vw].float().reshape(c, -1))
            v = torch.cat(values, 1)
            means.append(v.mean(1))
            stds.append(v.std(1).clamp_min(1e-6))
        self.model.init_output_statistics(means, stds, self.config.init_gain)

    # ----------------------------------------------------------------------------- views

    def _fresh_view(self) -> ViewEntry:
        if self.variant.augment:
            train_c2w = np.stack([np.asarray(c.c2w, dtype=np.float64) for c in self.train_cameras])
            cam = sample_augmented_cameras(train_c2w, 1, self.rng, self.config.fov_range_deg, self.render_size)[0]
            augmented = True
        else:
            cam = camera_at_size(self.train_cameras[int(self.rng.integers(len(self.train_cameras)))], self.render_size)
            augmented = False
        c2w, K = cam.tensors()
        t0 = time.perf_counter()
        with torch.no_grad():
            rgb = self.render_fn(cam)
        t1 = time.perf_counter()
        # Quantised like the feature cache's renderings, so fresh and cached targets match.
        image = (rgb.detach().float().cpu().clamp(0, 1) * 255).round() / 255
        image = image.permute(2, 0, 1)[None]
        maps = self.teacher.encode(image)
        t2 = time.perf_counter()
        self.counters.teacher_calls += 1
        self.counters.fresh_views += 1
        self.counters.render_s += t1 - t0
        self.counters.teacher_s += t2 - t1
        return ViewEntry(c2w, K, cam.width, cam.height, [m[0].detach().half().cpu() for m in maps], augmented)

    def _geometry(self, entry: ViewEntry, i: int, select: torch.Tensor | None):
        """``(geometry of the selected valid cells, their flat map indices)`` of map ``i``."""
        cam = feature_camera(entry.K, entry.width, entry.height, self.input_size, self.feature_shapes[i][1:])
        if self.config.cache_geometry and entry.geometry is not None and entry.geometry[i] is not None:
            geom, index = entry.geometry[i]
        else:
            rays, index = feature_rays(entry.c2w, cam)
            if not self.config.cache_geometry and select is not None:
                rays, index = rays[select], index[select]
            t0 = time.perf_counter()
            geom = self.geometry_fn(rays.to(self.device))
            self.counters.geometry_s += time.perf_counter() - t0
            if not self.config.cache_geometry:
                return geom, index
            if entry.geometry is None:
                entry.geometry = [None] * len(self.feature_shapes)
            entry.geometry[i] = (geom, index)
        if select is not None:
            return geom[select.to(geom.weights.device)], index[select]
        return geom, index

    def _update_pad(self, entry: ViewEntry) -> None:
        """EMA of the teacher's features over the padded cells (what render_features puts there)."""
        for i, f in enumerate(entry.features):
            vh, vw = feature_camera(entry.K, entry.width, entry.height, self.input_size, f.shape[1:]).valid_hw
            c, h, w = f.shape
            mask = torch.ones(h, w, dtype=torch.bool)
            mask[:vh, :vw] = False
            if not bool(mask.any()):
                continue
            mean = f.float()[:, mask].mean(1).to(self.device)
            buf = self.model.pad_feature(i)
            if self.pad_seen[i] == 0:
                buf.copy_(mean)
            else:
                buf.mul_(PAD_EMA).add_(mean, alpha=1 - PAD_EMA)
            self.pad_seen[i] += 1

    # ------------------------------------------------------------------------------ step

    def _num_valid(self, entry: ViewEntry, i: int) -> int:
        vh, vw = feature_camera(
            entry.K, entry.width, entry.height, self.input_size, self.feature_shapes[i][1:]
        ).valid_hw
        return vh * vw

    def train_step(self) -> dict[str, float]:
        """One optimisation step; returns its metrics."""
        t_start = time.perf_counter()
        self.model.train()
        entry, fresh = draw_view(self.fifo, self.variant.fresh_fraction, self.rng, self._fresh_view)
        if not fresh:
            self.counters.cached_draws += 1
        with torch.no_grad():
            self._update_pad(entry)
        preds, targets = [], []
        for i, (c, h, w) in enumerate(self.feature_shapes):
            n_valid = self._num_valid(entry, i)
            k = self.config.rays_per_step
            select = torch.randperm(n_valid, generator=self.gen)[:k] if 0 < k < n_valid else None
            geom, index = self._geometry(entry, i, select)
            target = entry.features[i].reshape(c, h * w)[:, index].T.float().to(self.device)
            preds.append(self.model(geom, i))
            targets.append(target)
        weight = self.config.correlation_weight if self.variant.correlation_loss else 0.0
        loss, metrics = imitation_loss(preds, targets, weight)
        hint = (
            f"training diverged (imitation.lr_grid {self.config.lr_grid:g} / lr_head {self.config.lr_head:g} too "
            "high?) or the teacher features hold NaN"
        )
        optimizer_step(loss, self.optimizer, self.scheduler, stage="train_imitation", step=self.step + 1, hint=hint)
        self.step += 1
        self.counters.wall_s += time.perf_counter() - t_start
        metrics.update(loss=float(loss.detach()), lr=self.optimizer.param_groups[0]["lr"], fresh=float(fresh))
        if self.first_metrics is None:
            self.first_metrics = dict(metrics)
        self._record(metrics)
        return metrics

    def _record(self, metrics: dict[str, float]) -> None:
        self._window.append(metrics)
        if not every_or_last(self.step, self.config.log_every, self.config.steps):
            return
        mean = {k: float(np.mean([m[k] for m in self._window])) for k in ("loss", "mse", "corr", "cosine")}
        self._window = []
        self.curve.append(
            {
                "step": self.step,
                **mean,
                "lr": metrics["lr"],
                "teacher_calls": self.counters.teacher_calls,
                "fresh_views": self.counters.fresh_views,
                "wall_s": round(self.counters.wall_s, 3),
            }
        )

    # ------------------------------------------------------------------------- training

    def fit(
        self,
        checkpoint_dir: str | Path | None = None,
        fingerprint: str = "",
        stop_at: int | None = None,
        resume: bool = True,
        extra: dict | None = None,
    ) -> None:
        """Train up to ``config.steps`` (or ``stop_at``), checkpointing every ``checkpoint_every`` steps.

        Args:
            checkpoint_dir: where checkpoints go (``None``: none).
            fingerprint: identity of the run; only a checkpoint with the same one is resumed.
            stop_at: stop early at this step (a checkpoint is written there).
            resume: first resume from the newest matching checkpoint in ``checkpoint_dir``.
            extra: stored in every checkpoint, returned by :meth:`resume`.
        """
        if checkpoint_dir is not None and resume:
            self.resume(checkpoint_dir, fingerprint)
        loop = TrainingLoop(
            self.config.steps,
            start=self.step,
            log_every=self.config.log_every,
            checkpoint_every=self.config.checkpoint_every,
            checkpoint_dir=checkpoint_dir,
            end=stop_at,
            name="imitation",
        )
        while self.step < loop.end:
            m = self.train_step()
            loop.report(self.step, loss=m["loss"], cos=m["cosine"], teacher_calls=self.counters.teacher_calls)
            if loop.checkpoint_due(self.step):
                loop.save(self.step, {**self.state_dict(), "fingerprint": fingerprint, "extra": extra})

    def resume(self, checkpoint_dir: str | Path, fingerprint: str = "") -> dict | None:
        """Load the newest checkpoint in ``checkpoint_dir`` if its fingerprint matches (logged).

        Returns:
            The checkpoint's ``extra`` dict (``{}`` if none was stored) when resumed, else ``None``.
        """
        found = resume_checkpoint(
            checkpoint_dir,
            fingerprint,
            ignoring="imitation: ignoring checkpoint %s (made with other settings or inputs)",
        )
        if found is None:
            return None
        path, state = found
        self.load_state_dict(state)
        log.info("imitation: resumed from %s at step %d", path, self.step)
        return state.get("extra") or {}

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": self.rng.bit_generator.state,
            "gen": self.gen.get_state(),
            "fifo": self.fifo.state_dict(),
            "counters": asdict(self.counters),
            "curve": list(self.curve),
            "window": list(self._window),
            "first_metrics": self.first_metrics,
            "pad_seen": list(self.pad_seen),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.model.load_state_dict(state["model"])
        load_optimizer_state(self.optimizer, state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.rng.bit_generator.state = state["rng"]
        self.gen.set_state(state["gen"])
        self.fifo.load_state_dict(state["fifo"], self.load_cached)
        self.counters = Counters(**state["counters"])
        self.curve = list(state["curve"])
        self._window = list(state["window"])
        self.first_metrics = state["first_metrics"]
        self.pad_seen = list(state["pad_seen"])

    def stats(self) -> dict[str, Any]:
        """Summary for ``train_stats.json``."""
        c = self.counters
        last = self.curve[-1] if self.curve else {}
        first = self.first_metrics or {}
        return {
            "steps": self.step,
            "teacher_calls": c.teacher_calls,
            "teacher_calls_per_step": c.teacher_calls / max(self.step, 1),
            "fresh_views": c.fresh_views,
            "cached_draws": c.cached_draws,
            "seeded_views": self.seeded_views,
            "fifo_size": len(self.fifo),
            "wall_s": c.wall_s,
            "teacher_s": c.teacher_s,
            "render_s": c.render_s,
            "geometry_s": c.geometry_s,
            "first_mse": first.get("mse"),
            "first_cosine": first.get("cosine"),
            "final_mse": last.get("mse"),
            "final_cosine": last.get("cosine"),
            "variant": asdict(self.variant),
        }


def make_trainer(
    nerf: RadianceModel,
    teacher: Teacher,
    train_cameras: Sequence[Camera],
    config: TrainImitationConfig,
    variant: VariantConfig,
    cache: FeatureCache | None = None,
    mesh: tuple[torch.Tensor, torch.Tensor] | None = None,
    render_fn: RenderFn | None = None,
    to_grid: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    encoding: torch.nn.Module | None = None,
) -> ImitationTrainer:
    """Wire an :class:`ImitationTrainer` from the stage's objects.

    Args:
        nerf: the frozen NeRF (``render_rays``, a world -> grid mapping, ``render_camera``).
        teacher: the teacher (``encode``, ``info``).
        train_cameras: training cameras (:class:`~san.cameras.Camera` or :class:`san.data.scene.Frame`).
        config, variant: settings.
        cache: an open :class:`san.features.cache.FeatureCache` to seed the FIFO, or ``None``.
        mesh: ``(vertices, faces)`` in the normalised frame; required by the mesh variant.
        render_fn: fresh-view renderer, ``camera -> HxWx3`` (default: ``nerf.render_camera(camera)["rgb"]``).
        to_grid: world -> grid mapping (default: the NeRF's, see :func:`san.imitation.render.grid_mapping`).
        seed: seeds model initialisation and every random choice.
        device: training device.
        encoding: prebuilt grid encoding (tests).
    """
    from san.imitation.geometry import mesh_geometry, nerf_latent_fn, volume_geometry
    from san.imitation.render import grid_mapping

    device = torch.device(device)
    to_grid = to_grid or grid_mapping(nerf)
    latent_fn = nerf_latent_fn(nerf) if config.head_latent and not variant.mesh_surface else None
    latent_dim = 0
    if latent_fn is not None:
        with torch.no_grad():
            latent_dim = int(latent_fn(torch.zeros(1, 3, device=device)).shape[-1])
    if variant.mesh_surface:
        if mesh is None:
            raise ValueError(f"variant {variant.name!r} renders mesh surface points: a mesh is required")
        vertices, faces = (t.to(device) for t in mesh)

        def geometry_fn(rays: RayBundle) -> RayGeometry:
            return mesh_geometry(vertices, faces, rays, to_grid)
    else:

        def geometry_fn(rays: RayBundle) -> RayGeometry:
            return volume_geometry(nerf, rays, to_grid, config.max_samples_per_ray, config.render_chunk, latent_fn)

    if render_fn is None:

        def render_fn(camera: Camera) -> torch.Tensor:
            return nerf.render_camera(camera)["rgb"]

    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # seeds the CUDA generator too (tiny-cuda-nn initialises there)
        model = ImitationModel(
            config.field_config(),
            config.head_config(variant.mesh_surface, latent_dim),
            teacher.info.feature_shapes,
            teacher.info.input_size,
            variant.mesh_surface,
            config.max_samples_per_ray,
            config.backend,
            device,
            encoding,
        )
    cameras = [Camera.of(c) for c in train_cameras]
    render_size = config.render_size or (int(cache.meta.render_size) if cache is not None else 512)
    rows = cached_rows(cache, variant.augment) if cache is not None else []
    return ImitationTrainer(
        model,
        config=config,
        variant=variant,
        geometry_fn=geometry_fn,
        teacher=teacher,
        render_fn=render_fn if variant.fresh_fraction > 0 else None,
        train_cameras=cameras,
        load_cached=(lambda i: cached_view_entry(cache, i)) if cache is not None else None,
        cached_indices=rows,
        render_size=render_size,
        seed=seed,
        device=device,
    )
