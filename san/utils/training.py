"""Training-loop mechanics shared by the NeRF loop (:mod:`san.pipeline.train_nerf` driving
:class:`san.models.nerf_trainer.NeRFTrainer`) and the imitation loop
(:meth:`san.imitation.trainer.ImitationTrainer.fit`); each trainer keeps its own step.

* :func:`optimizer_step`: refuse a non-finite loss (:func:`san.utils.checks.require_finite`), then
  backward, optimiser step, schedule step;
* :func:`resume_checkpoint`: the newest readable checkpoint of the same run (its ``fingerprint``), a
  checkpoint of another run reported and ignored;
* :class:`TrainingLoop`: the progress line with rate and ETA (:class:`san.utils.progress.Progress`),
  when a training-curve row and a checkpoint are due, and the atomic checkpoint write
  (:func:`san.utils.checkpoint.save_checkpoint`);
* :func:`load_optimizer_state`: an optimiser's saved state, laid out like the parameters it updates;
* :func:`every_or_last`, :func:`write_curve_csv`: the curve's cadence and its CSV file.

Steps count from 1: ``step`` is the number of optimisation steps done.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from san.utils.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from san.utils.checks import require_finite
from san.utils.io import atomic_write_text
from san.utils.progress import Progress

log = logging.getLogger("san")


def optimizer_step(loss, optimizer, scheduler, *, stage: str, step: int, hint: str) -> None:
    """Optimisation step number ``step`` (from 1): check ``loss`` (a scalar tensor) is finite, then
    ``zero_grad``, ``backward``, ``optimizer.step()`` and ``scheduler.step()``, in that order.

    Raises:
        san.utils.checks.NonFiniteError: ``"{stage}: the loss at step {step} is not finite ... {hint}"``,
            before any parameter changes.
    """
    require_finite(loss, stage=stage, what=f"the loss at step {step}", hint=hint)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()


def load_optimizer_state(optimizer, state: dict) -> None:
    """``optimizer.load_state_dict(state)``, then every per-parameter state tensor (Adam's moments)
    given its parameter's shape and memory layout.

    A checkpoint written with one hash-grid backend may be resumed with another: the torch
    backend's table parameter is ``F x E``, the C++ one ``E x F`` and tiny-cuda-nn's a flat
    entry-major vector, while their *state dicts* agree on ``F x E``. ``Optimizer.load_state_dict``
    checks no shapes, and torch's fused Adam (``fused=True``, as the trainers use it) silently
    computes wrong updates on the CPU when a parameter and its moments differ in layout (measured:
    an lr-sized error after one step). A moment whose shape is its parameter's transposed is
    transposed, a flat one of a 2-D table (or back) is read entry-major; any other shape mismatch
    raises ``ValueError``.
    """
    optimizer.load_state_dict(state)
    for param, slots in optimizer.state.items():
        for key, value in slots.items():
            if not isinstance(value, torch.Tensor) or value.dim() == 0:
                continue
            if value.shape == param.shape and value.stride() == param.stride():
                continue
            if value.shape != param.shape:
                if value.dim() == 2 and value.shape == param.shape[::-1]:
                    value = value.t()
                elif (
                    value.numel() == param.numel()
                    and 1 in (value.dim(), param.dim())
                    and 2 in (value.dim(), param.dim())
                ):
                    value = _hash_table_layout(value, param)
                else:
                    raise ValueError(
                        f"optimizer state {key!r} has shape {tuple(value.shape)} for a parameter of shape "
                        f"{tuple(param.shape)}: the checkpoint belongs to another model"
                    )
            slots[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _hash_table_layout(value: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """A hash table's moment between tiny-cuda-nn's flat entry-major vector and a 2-D table (the torch
    backend's ``F x E`` or the C++ backend's ``E x F``; ``F`` is the smaller side)."""
    if value.dim() == 1:
        F = min(param.shape)
        entry_major = value.view(-1, F)
        return entry_major if param.shape[1] == F else entry_major.t()
    F = min(value.shape)
    return (value if value.shape[1] == F else value.t()).reshape(-1)


def resume_checkpoint(
    folder: str | os.PathLike, fingerprint: Any, *, ignoring: str, map_location: Any = "cpu"
) -> tuple[Path, dict] | None:
    """``(path, state)`` of the newest readable ``step_*.ckpt`` in ``folder``
    (:func:`~san.utils.checkpoint.latest_checkpoint`) when its ``"fingerprint"`` entry equals
    ``fingerprint``; ``None`` when there is none, or when it belongs to another run: then the warning
    ``ignoring % path`` is logged and the file is left in place.

    Raises:
        san.utils.checkpoint.CheckpointError: the newest readable-looking file cannot be loaded.
    """
    path = latest_checkpoint(folder)
    if path is None:
        return None
    state = load_checkpoint(path, map_location=map_location)
    if state.get("fingerprint", "") != fingerprint:
        log.warning(ignoring, path)
        return None
    return path, state


def every_or_last(step: int, every: int, last: int) -> bool:
    """``True`` at every ``every``-th step (``every`` >= 1) and at step ``last``."""
    return step % every == 0 or step == last


class TrainingLoop:
    """The schedule of one training run from step ``start`` to ``end``.

    Args:
        total: the run's configured number of steps (progress lines and curve rows count to it).
        start: the step the run (re)starts at (0, or a resumed checkpoint's step).
        log_every: steps between progress lines and training-curve rows (>= 1); the last step
            (``total``) always has both.
        checkpoint_every: steps between checkpoints (0: none); ``end`` has one too when it is
            before ``total`` (a stopped run resumes there); ``total`` never does (the caller writes
            its final outputs instead).
        checkpoint_dir: where checkpoints go (``None``: none).
        end: stop at this step (``None``: ``total``; capped at ``total``).
        name: the progress line's first word (``"{name} step {step}/{total} | ..."``).
    """

    def __init__(
        self,
        total: int,
        *,
        start: int = 0,
        log_every: int,
        checkpoint_every: int = 0,
        checkpoint_dir: str | os.PathLike | None = None,
        end: int | None = None,
        name: str = "train",
    ) -> None:
        if log_every < 1:
            raise ValueError(f"TrainingLoop: log_every must be >= 1, got {log_every}")
        self.total, self.log_every, self.checkpoint_every = total, log_every, checkpoint_every
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.end = total if end is None else min(end, total)
        self.progress = Progress(total, start=start, every=log_every, name=name)

    def report(self, step: int, **metrics: float) -> None:
        """After step ``step``: the progress line (``{name} step {step}/{total} | {metric} {value:.4g}
        ... | {rate} it/s | ETA ...``), every ``log_every`` steps, at the last one, or after 10 s."""
        self.progress.update(step - 1, **metrics)

    def curve_due(self, step: int) -> bool:
        """Whether step ``step`` gets a training-curve row (every ``log_every`` steps and the last)."""
        return every_or_last(step, self.log_every, self.total)

    def checkpoint_due(self, step: int) -> bool:
        """Whether a checkpoint is written after step ``step`` (see the class docstring)."""
        return (
            self.checkpoint_dir is not None
            and self.checkpoint_every > 0
            and every_or_last(step, self.checkpoint_every, self.end)
            and step < self.total
        )

    def save(self, step: int, state: dict) -> Path:
        """Write ``checkpoint_dir/step_{step:07d}.ckpt`` atomically, keeping the newest two."""
        if self.checkpoint_dir is None:
            raise ValueError("TrainingLoop.save: this run has no checkpoint_dir")
        return save_checkpoint(self.checkpoint_dir, step, state)


def write_curve_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Write ``training_curve.csv`` atomically: a header of ``columns`` then one line per row
    (``\\n`` line ends; a missing key is an empty cell, a key not in ``columns`` is left out)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
