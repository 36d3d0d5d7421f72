"""san.utils.training: the loop mechanics the NeRF and imitation trainers share."""

from __future__ import annotations

import logging

import pytest
import torch

from san.utils.checks import NonFiniteError
from san.utils.training import TrainingLoop, optimizer_step, resume_checkpoint, write_curve_csv


def _due(loop: TrainingLoop, what: str) -> list[int]:
    check = loop.curve_due if what == "curve" else loop.checkpoint_due
    return [s for s in range(1, loop.end + 1) if check(s)]


def test_schedule_of_curve_rows_and_checkpoints(tmp_path):
    loop = TrainingLoop(10, log_every=4, checkpoint_every=3, checkpoint_dir=tmp_path)
    assert _due(loop, "curve") == [4, 8, 10]  # every log_every and the last
    assert _due(loop, "checkpoint") == [3, 6, 9]  # never at the last step: final outputs are written there
    stopped = TrainingLoop(10, log_every=4, checkpoint_every=3, checkpoint_dir=tmp_path, end=7)
    assert stopped.end == 7 and _due(stopped, "checkpoint") == [3, 6, 7]  # a stopped run resumes where it stopped
    assert TrainingLoop(10, log_every=4, end=50).end == 10
    assert _due(TrainingLoop(10, log_every=4, checkpoint_every=0, checkpoint_dir=tmp_path, end=7), "checkpoint") == []
    assert _due(TrainingLoop(10, log_every=4, checkpoint_every=3), "checkpoint") == []  # no folder
    with pytest.raises(ValueError, match="no checkpoint_dir"):
        TrainingLoop(10, log_every=4).save(3, {})


def test_progress_line_counts_steps_from_one(caplog):
    loop = TrainingLoop(4, start=1, log_every=2, name="imitation")
    with caplog.at_level(logging.INFO, logger="san"):
        for step in (2, 3, 4):
            loop.report(step, loss=0.5)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" | ")[0] for line in lines] == ["imitation step 2/4", "imitation step 4/4"]
    assert lines[0].split(" | ")[1] == "loss 0.5" and "it/s" in lines[0] and "ETA" in lines[0]


def test_resume_only_a_checkpoint_of_the_same_run(tmp_path, caplog):
    assert resume_checkpoint(tmp_path / "none", "fp", ignoring="x %s") is None
    loop = TrainingLoop(10, log_every=5, checkpoint_every=2, checkpoint_dir=tmp_path)
    loop.save(2, {"fingerprint": "fp", "w": torch.ones(2)})
    path = loop.save(4, {"fingerprint": "fp", "w": torch.zeros(2)})
    found = resume_checkpoint(tmp_path, "fp", ignoring="x %s")
    assert found is not None and found[0] == path and torch.equal(found[1]["w"], torch.zeros(2))
    with caplog.at_level(logging.WARNING, logger="san"):
        assert resume_checkpoint(tmp_path, "other", ignoring="run: ignoring %s (other run)") is None
    assert caplog.messages == [f"run: ignoring {path} (other run)"] and path.exists()


def test_curve_csv_columns(tmp_path):
    path = tmp_path / "training_curve.csv"
    write_curve_csv(
        path, [{"step": 2, "loss": 0.5, "extra": 1}, {"step": 4, "loss": 0.25, "psnr": 9.5}], ("step", "loss", "psnr")
    )
    assert path.read_text() == "step,loss,psnr\n2,0.5,\n4,0.25,9.5\n"
    assert [p.name for p in tmp_path.iterdir()] == ["training_curve.csv"]  # no temporary left behind


def test_optimizer_step_refuses_a_non_finite_loss_before_updating():
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.5)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.5)
    optimizer_step((w**2).sum(), opt, sched, stage="s", step=1, hint="h")
    assert torch.equal(w.detach(), torch.zeros(3)) and opt.param_groups[0]["lr"] == 0.25
    with pytest.raises(NonFiniteError, match=r"^s: the loss at step 1 is not finite.*h"):
        optimizer_step((w * float("nan")).sum(), opt, sched, stage="s", step=1, hint="h")
    assert torch.equal(w.detach(), torch.zeros(3)) and opt.param_groups[0]["lr"] == 0.25


def test_log_every_below_one_is_refused_by_the_loop_and_the_config():
    from san.config import ConfigError
    from san.imitation.config import TrainImitationConfig

    with pytest.raises(ValueError, match="log_every must be >= 1, got 0"):
        TrainingLoop(10, log_every=0)
    with pytest.raises(ConfigError, match="imitation: log_every must be >= 1, got 0"):
        TrainImitationConfig(log_every=0)
