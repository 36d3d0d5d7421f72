"""Periodic progress lines for long jobs: ``step 1200/5000 | loss 0.0123 | psnr 23.41 | 35.2 it/s | ETA 1m48s``."""

from __future__ import annotations

import logging
import time

RESOURCES_LINE = "job resources"
"""Start of the last line a successful pipeline job logs (``san.pipeline.adapter.resources_line``),
read back for the cost table (``san.report.costs.job_resources``)."""

log = logging.getLogger("san")


def format_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


class Progress:
    """Logs step, metrics, rate and ETA every ``every`` steps or ``min_seconds`` seconds."""

    def __init__(self, total: int, start: int = 0, every: int = 100, min_seconds: float = 10.0, name: str = "train"):
        self.total, self.start, self.every, self.min_seconds, self.name = total, start, every, min_seconds, name
        self.t0 = self.last = time.perf_counter()

    def update(self, step: int, **metrics: float) -> None:
        now = time.perf_counter()
        done = step + 1
        if done % self.every and done != self.total and now - self.last < self.min_seconds:
            return
        self.last = now
        rate = (done - self.start) / max(now - self.t0, 1e-9)
        eta = (self.total - done) / max(rate, 1e-9)
        parts = [f"{self.name} step {done}/{self.total}"]
        parts += [f"{k} {v:.4g}" for k, v in metrics.items()]
        parts += [f"{rate:.1f} it/s", f"ETA {format_seconds(eta)}"]
        log.info(" | ".join(parts))


LOG_FORMAT = "%(asctime)s %(san_tag)s%(name)s %(levelname)s %(message)s"
"""Format of every ``san`` log line; ``san_tag`` is the job's ``[rule dataset/scene variant] `` (or empty)."""


class JobTagFilter(logging.Filter):
    """Sets ``record.san_tag`` to ``"[tag] "`` (or ``""``) on every record a handler emits, so that
    each line of a parallel job, :class:`Progress` lines included, names its job."""

    def __init__(self, tag: str | None = None):
        super().__init__()
        self.prefix = f"[{tag}] " if tag else ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.san_tag = self.prefix
        return True


def setup_logging(logfile: str | None = None, level: int = logging.INFO, tag: str | None = None) -> None:
    """Log to stderr and, when given, to ``logfile`` (Snakemake's ``log:``), at ``level``. Python
    warnings (a partial capture, skipped frames) are logged too, so they land in the rule's log.

    ``tag`` (e.g. ``"train_imitation demo/demo no_aug"``, :func:`san.pipeline.adapter.job_tag`)
    prefixes every line as ``[tag]``. Calling it again replaces the handlers it installed before
    and leaves other handlers of the root logger (a test runner's) in place."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_san_handler", False)]:
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if logfile:
        handlers.append(logging.FileHandler(logfile, mode="w"))
    tag_filter = JobTagFilter(tag)
    for handler in handlers:
        handler._san_handler = True
        handler.addFilter(tag_filter)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)


def report_failure(stage: str, error: BaseException, logfile: str | None = None) -> str:
    """Log a failed stage once: the one-line cause on stderr and in the log file, the traceback only
    in the log file (the root logger's file handlers, set up by :func:`setup_logging`; with none,
    stderr gets the traceback). Returns the one-line message ``"{stage}: error: {cause}"``."""
    import traceback

    message = f"{stage}: error: {str(error) or type(error).__name__}"
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    for handler in files:
        handler.acquire()
        try:
            handler.stream.write(trace)
            handler.flush()
        finally:
            handler.release()
    log.error(message + (f" (traceback in {logfile or files[0].baseFilename})" if files else "\n" + trace))
    return message
