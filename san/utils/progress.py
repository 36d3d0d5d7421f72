"""Periodic progress lines for long jobs: ``step 1200/5000 | loss 0.0123 | psnr 23.41 | 35.2 it/s | ETA 1m48s``."""

from __future__ import annotations

import logging
import time

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


def setup_logging(logfile: str | None = None, level: int = logging.INFO) -> None:
    """Log to stderr and, when given, to ``logfile`` (Snakemake's ``log:``)."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if logfile:
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(
        level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
