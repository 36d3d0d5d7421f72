"""Configuration of the segmentation evaluation (:mod:`san.evaluation.protocol`) and of the ground-
truth benchmark (:mod:`san.benchmark`).

Imports no torch, trimesh or h5py: every Snakemake parse reads these classes
(``san.pipeline.settings``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from san.config import ConfigError


@dataclass(frozen=True)
class EvaluationConfig:
    """Config section ``evaluation:`` (see the module docstring for the protocol).

    Attributes:
        render_size: longest side, in pixels, of the held-out renderings (paper: 512).
        grid: clicks per side of the click grid (``grid x grid`` clicks per view).
        max_views: evaluate only the first ``max_views`` test views (``None``: all).
        qualitative_views: views drawn in ``qualitative.png``.
        ceiling: compute the teacher's half-patch shift ceiling (one extra encode per view).
        ceiling_shift_at_1024: shift of the ceiling in pixels at SAM's 1024-pixel input scale.
        timing_teacher: teacher used for Table 1's timings (``None``: the quality teacher). Any
            other is built without weights, so it must be an untrained one; on a CPU without
            weights ``sam_vit_h_untrained`` has the true ViT-H encoder cost (about a minute per
            image on 2 cores: set ``timing_encode_warmup: 0, timing_encode_repeats: 1``).
        timing_warmup: untimed runs before timing the cheap steps (rendering, decoding).
        timing_repeats: timed runs of the cheap steps (the median is reported).
        timing_encode_warmup: untimed runs of the timing teacher's encoder. ``0`` on CPU means the
            single timed run is not warmed up (first-call allocations included).
        timing_encode_repeats: timed runs of the timing teacher's encoder.
        chunk: rays per chunk when rendering (``None``: the renderer's default).
        text_prompts: texts decoded in every held-out view (protocol step 7; teachers with a text
            head only, e.g. SAM 3) of every scene whose sheet row gives no list of its own (column
            text_prompts); empty: no text evaluation for those scenes.
    """

    render_size: int = 512
    grid: int = 5
    max_views: int | None = None
    qualitative_views: int = 3
    ceiling: bool = True
    ceiling_shift_at_1024: float = 8.0
    timing_teacher: str | None = None
    timing_warmup: int = 3
    timing_repeats: int = 10
    timing_encode_warmup: int = 2
    timing_encode_repeats: int = 5
    chunk: int | None = None
    text_prompts: tuple[str, ...] = ()

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "cpu": {
            "render_size": 128,
            "max_views": 3,
            "timing_warmup": 1,
            "timing_repeats": 3,
            "timing_encode_warmup": 0,
            "timing_encode_repeats": 1,
        },
        "paper": {
            "render_size": 512,
            "max_views": None,
            "timing_warmup": 3,
            "timing_repeats": 10,
            "timing_encode_warmup": 2,
            "timing_encode_repeats": 5,
        },
    }

    def __post_init__(self) -> None:
        checks = {
            "render_size": self.render_size >= 8,
            "grid": self.grid >= 1,
            "max_views": self.max_views is None or self.max_views >= 1,
            "qualitative_views": self.qualitative_views >= 0,
            "ceiling_shift_at_1024": self.ceiling_shift_at_1024 > 0,
            "timing_warmup": self.timing_warmup >= 0,
            "timing_repeats": self.timing_repeats >= 1,
            "timing_encode_warmup": self.timing_encode_warmup >= 0,
            "timing_encode_repeats": self.timing_encode_repeats >= 1,
            "chunk": self.chunk is None or self.chunk >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(
                f"config.evaluation: invalid value(s) for {', '.join(bad)}: {[getattr(self, k) for k in bad]}"
            )


PROPAGATIONS = ("click", "chain")
"""How a benchmark prompt reaches the target views (:class:`BenchmarkConfig` ``propagation``)."""
POINT_SUBSETS = ("median", "farthest")
"""Rules for the positive points the decoder gets in one benchmark view (``point_subset``)."""


@dataclass(frozen=True)
class BenchmarkConfig:
    """Config section ``benchmark:`` (rule ``evaluate_benchmark``; protocol in the module docstring).

    Attributes:
        max_size: cap on the rendering's longest side in pixels (``None``: render at the
            annotation resolution; predicted masks are always scored at that resolution).
        teacher_baseline: also run the protocol with the teacher on rendered RGB (rule
            ``evaluate_benchmark_teacher``, once per scene; its figures go beside the imitation's).
        mesh_views: ``K`` views whose imitation masks are voted onto the mesh (the reference view,
            then the targets whose cameras are farthest apart, :func:`spread_views`); ``0`` skips
            the mesh segmentation.
        vote_threshold: share of the views seeing a face that must put it inside the mask.
        surface_samples: points sampled per surface for the surface IoU.
        surface_distance: distance threshold of the surface IoU in the ground-truth meshes' units
            (``None``: the layout's ``surface_distance``, else 1 % of the diagonal of the
            ground-truth meshes' bounding box).
        qualitative_tasks: rows (tasks) in ``qualitative.png``.
        propagation: ``chain`` (default: each visited view's mask adds points, so prompts reach
            views that do not see the click) or ``click`` (track the task's prompts only); see
            :func:`run_task`. On the demo (cameras all around the objects) a perfect segmenter
            scores mIoU 1.0 with ``chain`` and 0.33 with ``click``
            (``scripts/eval_benchmark_oracle.py``).
        chain_points: positive points each visited view adds (``chain``).
        max_points: most positive points the decoder gets in one view.
        chain_max_area: a view's mask adds chain points only when it covers at most this share of
            the image.
        point_subset: which ``max_points`` of a view's visible positive points the decoder gets:
            ``median`` (the task's click, then those nearest to the coordinate-wise median of all
            of them: robust to the outlying points a spilled mask adds) or ``farthest`` (the click,
            then farthest-point sampling: the rule before 2026-12-01, kept to reproduce older
            figures); :func:`san.benchmark.median_points`.
    """

    max_size: int | None = None
    teacher_baseline: bool = True
    mesh_views: int = 3
    vote_threshold: float = 0.5
    surface_samples: int = 20000
    surface_distance: float | None = None
    qualitative_tasks: int = 6
    propagation: str = "chain"
    chain_points: int = 8
    max_points: int = 8
    chain_max_area: float = 0.5
    point_subset: str = "median"

    def __post_init__(self) -> None:
        checks = {
            "max_size": self.max_size is None or self.max_size >= 8,
            "mesh_views": self.mesh_views >= 0,
            "vote_threshold": 0 < self.vote_threshold <= 1,
            "surface_samples": self.surface_samples >= 100,
            "surface_distance": self.surface_distance is None or self.surface_distance > 0,
            "qualitative_tasks": self.qualitative_tasks >= 0,
            "propagation": self.propagation in PROPAGATIONS,
            "chain_points": self.chain_points >= 1,
            "max_points": self.max_points >= 1,
            "chain_max_area": 0 < self.chain_max_area <= 1,
            "point_subset": self.point_subset in POINT_SUBSETS,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(
                f"config.benchmark: invalid value(s) for {', '.join(bad)}: {[getattr(self, k) for k in bad]}"
            )
