"""``san.pipeline.adapter.run_rule``: what every workflow script shares (log file, settings, the
``SAN_FAIL_FIRST_ATTEMPT`` fault injection used by the cluster retry test)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from snakemake.iocontainers import Namedlist, Wildcards

from san.config import ConfigError
from san.pipeline.adapter import InjectedFault, run_rule
from san.pipeline.settings import Settings

pytestmark = pytest.mark.usefixtures("restore_root_logging")  # run_rule reconfigures the root logger
REPO = Path(__file__).resolve().parents[2]


def _smk(
    tmp_path: Path,
    rule: str = "train_nerf",
    attempt: int = 1,
    config: dict | None = None,
    log: bool = True,
    wildcards: dict | None = None,
):
    return SimpleNamespace(
        log=Namedlist([str(tmp_path / f"{rule}.log")] if log else []),
        rule=rule,
        wildcards=Wildcards(fromdict=wildcards or {"dataset": "demo", "scene": "demo"}),
        attempt=attempt,
        resources=Namedlist(fromdict={"mem_mb": 4000 * attempt, "_cores": 2}),
        threads=2,
        config={"scenes": "config/scenes.tsv", "nerf": {"preset": "cpu"}} if config is None else config,
    )


def test_runs_the_body_with_settings_and_logs_to_the_file(tmp_path):
    got = []

    def body(settings):
        assert isinstance(settings, Settings)
        got.append(settings)
        logging.getLogger("san.pipeline.train_nerf").info("inside the body")

    smk = _smk(tmp_path, attempt=2)
    run_rule(smk, body)
    assert len(got) == 1 and got[0].scenes == "config/scenes.tsv"
    text = Path(smk.log[0]).read_text()
    assert "rule train_nerf" in text and "'dataset': 'demo'" in text and "attempt 2" in text and "mem_mb 8000" in text
    assert "inside the body" in text


def test_fault_injection_fails_the_first_attempt_only(tmp_path, monkeypatch):
    monkeypatch.setenv("SAN_FAIL_FIRST_ATTEMPT", "extract_mesh, train_nerf")
    monkeypatch.setenv("SAN_FAULT_DIR", str(tmp_path / "faults"))
    calls = []
    with pytest.raises(InjectedFault, match="train_nerf.*first run"):
        run_rule(_smk(tmp_path, attempt=1), calls.append)
    assert calls == []  # the body never ran
    # The retry runs in a new process that may not know its attempt number (Slurm jobs do not).
    run_rule(_smk(tmp_path, attempt=1), calls.append)
    assert len(calls) == 1
    # A rule that is not listed runs on its first attempt.
    run_rule(_smk(tmp_path, rule="report", attempt=1), calls.append)
    assert len(calls) == 2


def test_no_fault_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("SAN_FAIL_FIRST_ATTEMPT", raising=False)
    calls = []
    run_rule(_smk(tmp_path, attempt=1), calls.append)
    assert len(calls) == 1


def test_failure_prints_one_line_and_logs_the_traceback(tmp_path, capfd):
    def body(settings):
        raise ValueError("the body broke")

    smk = _smk(tmp_path, rule="extract_mesh")
    with pytest.raises(SystemExit) as info:
        run_rule(smk, body)
    assert info.value.code == 1
    text = Path(smk.log[0]).read_text()
    assert "rule extract_mesh: error: the body broke" in text and "Traceback" in text
    err = capfd.readouterr().err
    assert "rule extract_mesh: error: the body broke" in err
    assert "Traceback" not in err and err.count("the body broke") == 1  # the cause once, no stacked tracebacks


def test_bad_config_fails_before_the_body(tmp_path):
    calls = []
    with pytest.raises(ConfigError, match=r"config\.nerf\.stepz"):
        run_rule(_smk(tmp_path, config={"scenes": "s.tsv", "nerf": {"stepz": 1}}), calls.append)
    assert calls == []


def test_without_a_log_file(tmp_path):
    calls = []
    run_rule(_smk(tmp_path, log=False), calls.append)
    assert len(calls) == 1 and list(tmp_path.iterdir()) == []


def test_every_log_line_names_the_rule_scene_and_variant(tmp_path, capfd):
    """Issue 17, item 4: jobs running in parallel interleave on stderr; each line says whose it is,
    Progress lines and other libraries' lines included."""
    from san.utils.progress import Progress

    def body(settings):
        logging.getLogger("san.pipeline.train_imitation").info("loading the cache")
        progress = Progress(total=2, every=1, name="imitation")
        for step in range(2):
            progress.update(step, loss=0.5)
        logging.getLogger("trimesh").warning("a library's warning")

    wildcards = {"dataset": "demo", "scene": "demo", "variant": "no_aug"}
    smk = _smk(tmp_path, rule="train_imitation", wildcards=wildcards)
    run_rule(smk, body)
    tag = "[train_imitation demo/demo no_aug] "
    lines = Path(smk.log[0]).read_text().splitlines()
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert any("imitation step 2/2" in line for line in lines) and any("a library's warning" in line for line in lines)
    assert any("loading the cache" in line for line in err)
    for line in lines + err:
        assert tag in line, line


def test_a_successful_job_logs_its_exact_resources_last(tmp_path):
    """The cost table's CPU seconds and peak RSS come from this line (Snakemake's sampling misses the
    end of long jobs): it must be the log's last line and give this process's getrusage figures."""
    import resource

    from san.report.costs import job_resources

    def body(settings):
        block = bytearray(64 * 1024 * 1024)  # a peak the line must include
        block[::4096] = b"x" * len(block[::4096])
        sum(i * i for i in range(200_000))  # some CPU time

    smk = _smk(tmp_path)
    run_rule(smk, body)
    last = Path(smk.log[0]).read_text().splitlines()[-1]
    assert "job resources | wall_s" in last
    got = job_resources(smk.log[0])
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    assert 0 < got["cpu_s"] <= own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime + 1.0
    assert 64 <= got["max_rss_mb"] <= max(own.ru_maxrss, kids.ru_maxrss) / 1024 + 1  # children: pytest's earlier ones
    assert got["wall_s"] >= 0

    failing = _smk(tmp_path, rule="extract_mesh")
    with pytest.raises(SystemExit):
        run_rule(failing, lambda settings: 1 / 0)
    assert job_resources(failing.log[0]) is None  # a failed job's log has no such line
