"""What every ``workflow/scripts/*.py`` adapter shares: logging to the rule's ``log:``, the
parsed :class:`~san.pipeline.settings.Settings`, and a test-only fault injection.

Fault injection (for the cluster retry test only): ``SAN_FAIL_FIRST_ATTEMPT=rule_a,rule_b`` makes
each job of those rules fail the first time it runs, so Snakemake's ``retries`` resubmits it (with
more memory, since ``mem_mb`` scales with the attempt). "First time" is remembered by a marker file
under ``SAN_FAULT_DIR`` (default ``.snakemake/san-faults``) rather than by ``snakemake.attempt``,
which a job running under the Slurm executor does not see.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable

from san.pipeline.settings import Settings, parse_settings
from san.utils.progress import RESOURCES_LINE, report_failure, setup_logging

log = logging.getLogger("san")


class InjectedFault(RuntimeError):
    """Raised on purpose by ``SAN_FAIL_FIRST_ATTEMPT`` (tests of cluster retries)."""


def inject_fault_once(rule: str, wildcards: dict) -> None:
    """Raise :class:`InjectedFault` the first time a job of a rule named in ``SAN_FAIL_FIRST_ATTEMPT`` runs."""
    failing = {r.strip() for r in os.environ.get("SAN_FAIL_FIRST_ATTEMPT", "").split(",") if r.strip()}
    if rule not in failing:
        return
    job = "-".join([rule, *(f"{k}={v}" for k, v in sorted(wildcards.items()))]) or rule
    marker = Path(os.environ.get("SAN_FAULT_DIR", ".snakemake/san-faults")) / job
    if marker.exists():
        log.info("fault injection: %s already failed once, running normally", job)
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("failed once on purpose\n")
    raise InjectedFault(f"rule {rule}: fault injected on its first run (SAN_FAIL_FIRST_ATTEMPT; marker {marker})")


def job_tag(rule: str, wildcards: dict) -> str:
    """The tag of a job's log lines: the rule, then ``dataset/scene``, then the other wildcard values
    in their order, e.g. ``"train_imitation demo/demo no_aug"``."""
    wildcards = {k: str(v) for k, v in wildcards.items()}
    parts = [rule]
    if "dataset" in wildcards and "scene" in wildcards:
        parts.append(f"{wildcards.pop('dataset')}/{wildcards.pop('scene')}")
    parts += wildcards.values()
    return " ".join(parts)


def resources_line(wall_s: float) -> str:
    """``job resources | wall_s W | cpu_s C | max_rss_mb M``: this process's exact CPU seconds (user +
    system, children included) and peak resident memory, from ``getrusage`` (the kernel's own
    accounting). Snakemake's ``benchmark:`` samples these every 0.5 s for 15 s and every 30 s after,
    so for a job longer than 15 s it misses up to 30 s of CPU time and any later memory peak."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    per_mb = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KB on Linux
    rss = max(own.ru_maxrss, kids.ru_maxrss) / per_mb
    return f"{RESOURCES_LINE} | wall_s {wall_s:.2f} | cpu_s {cpu:.2f} | max_rss_mb {rss:.1f}"


def run_rule(smk: Any, body: Callable[[Settings], object]) -> None:
    """Run ``body(settings)`` for the Snakemake ``script:`` object ``smk``. Every log line of the job
    (stderr and the rule's ``log:``) starts with its :func:`job_tag`, e.g. ``[train_imitation demo/demo no_aug]``;
    a successful job's last line is its :func:`resources_line`."""
    start = time.perf_counter()
    setup_logging(smk.log[0] if smk.log else None, tag=job_tag(smk.rule, dict(smk.wildcards)))
    attempt = int(getattr(smk, "attempt", 1))
    mem_mb = getattr(smk.resources, "mem_mb", None)
    log.info(
        "rule %s | wildcards %s | attempt %d | mem_mb %s | threads %s",
        smk.rule,
        dict(smk.wildcards),
        attempt,
        mem_mb,
        smk.threads,
    )
    inject_fault_once(smk.rule, dict(smk.wildcards))
    settings = parse_settings(smk.config)
    try:
        body(settings)
    except Exception as e:  # one-line cause on stderr, traceback in the rule's log
        report_failure(f"rule {smk.rule}", e, smk.log[0] if smk.log else None)
        raise SystemExit(1) from None
    log.info(resources_line(time.perf_counter() - start))
