"""Atomic outputs: a failed or interrupted job never leaves a file that looks complete.

Temporary files are named ``.{name}.{host}.{pid}.{random}.tmp{suffix}`` beside the target. A job
killed hard (SIGKILL, node failure) cannot remove its own; the next write of the same target removes
those whose process is gone (same host, pid no longer running) or that are older than a day.

Strict JSON: :func:`atomic_write_json` refuses NaN and infinity (``allow_nan=False``), so no
``metrics.json`` ever holds ``NaN``; the error names the file.

A full disk is reported as :class:`DiskFullError` ("No space left on device") naming the target,
whatever library did the writing (h5py and torch do not always keep ``errno``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

_UMASK = os.umask(0o022)
os.umask(_UMASK)
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"
STALE_SECONDS = 24 * 3600  # a temporary file of another host older than this is stale
_FULL_BELOW_BYTES = 1 << 20  # a failed write with less free space than this is a full disk

log = logging.getLogger("san")


class DiskFullError(OSError):
    """A write failed because the file system is full; the message names the target path."""


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files of earlier, killed writes of ``path`` (see the module docstring).

    Returns:
        The removed paths (each is logged).
    """
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.([A-Za-z0-9_-]+)\.(\d+)\.\w+")
    removed = []
    if not path.parent.is_dir():
        return removed
    for p in path.parent.iterdir():
        m = pattern.match(p.name)
        if not m:
            continue
        host, pid = m.group(1), int(m.group(2))
        try:
            age = time.time() - p.stat().st_mtime
        except FileNotFoundError:
            continue
        stale = (host == _HOST and pid != os.getpid() and not _pid_running(pid)) or age > STALE_SECONDS
        if stale:
            with contextlib.suppress(FileNotFoundError):
                p.unlink() if not p.is_dir() else shutil.rmtree(p)
                removed.append(p)
                log.warning("removed %s: temporary file of an interrupted write of %s", p, path)
    return removed


def _is_disk_full(error: BaseException, folder: Path) -> bool:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if "No space left on device" in str(error) or "Disk quota exceeded" in str(error):
        return True
    try:
        return shutil.disk_usage(folder).free < _FULL_BELOW_BYTES
    except OSError:
        return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps ``path``'s suffix (libraries such as trimesh pick the format from it).
    Temporaries of earlier killed writes of ``path`` are removed first.

    Raises:
        DiskFullError: when the block fails on a full file system (message names ``path``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    prefix = f".{path.name}.{_HOST}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix or ".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        try:
            yield tmp
            if tmp.exists():  # mkstemp creates 0600; give the result the usual umask permissions
                os.chmod(tmp, 0o666 & ~_UMASK)
            os.replace(tmp, path)
        except Exception as e:
            if not isinstance(e, DiskFullError) and _is_disk_full(e, path.parent):
                raise DiskFullError(
                    errno.ENOSPC, f"No space left on device while writing {path} ({type(e).__name__}: {e})"
                ) from e
            raise
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a new empty temporary folder beside ``folder`` (mode 0755); only if the block succeeds
    is it renamed onto ``folder``, replacing an existing one (moved aside and removed first).

    The temporary folder is named ``.{name}.tmp-{random}``; it is removed whenever the block fails.
    ``folder``'s parent is created.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would otherwise become the folder's mode
    try:
        yield tmp
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
            os.replace(folder, old / folder.name)
            shutil.rmtree(old)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as strict JSON (no NaN/infinity: :class:`ValueError` naming ``path``)."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=False)
    except ValueError as e:
        raise ValueError(f"{path}: refusing to write NaN or infinity into JSON ({_non_finite_keys(obj)})") from e
    atomic_write_text(path, text + "\n")


def _non_finite_keys(obj, where: str = "") -> str:
    """Comma-separated key paths of the non-finite floats in ``obj`` (first 5)."""
    import math

    found: list[str] = []

    def walk(o, at):
        if len(found) >= 5:
            return
        if isinstance(o, float) and not math.isfinite(o):
            found.append(at or "<value>")
        elif isinstance(o, dict):
            for k, v in o.items():
                walk(v, f"{at}.{k}" if at else str(k))
        elif isinstance(o, (list, tuple)):
            for i, v in enumerate(o):
                walk(v, f"{at}[{i}]")
        elif hasattr(o, "dtype") and getattr(o, "size", 0):
            import numpy as np

            if np.asarray(o).dtype.kind == "f" and not np.isfinite(np.asarray(o)).all():
                found.append(at or "<array>")

    walk(obj, where)
    return ", ".join(found) or "a non-finite value"


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def load_versioned_torch(
    path: str | os.PathLike, file_format: str, version: int, error: type[Exception], what: str, kind: str, label: str
) -> dict:
    """Read a ``torch.save`` dict (``weights_only=True``, onto the CPU) that names its ``format`` and
    ``version``, and check both.

    Raises:
        error: ``"{path}: cannot read {what} (...)"``, ``"{path}: not {kind}"`` or
            ``"{path}: {label} version V, expected {version}"``.
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise error(f"{path}: cannot read {what} ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or state.get("format") != file_format:
        raise error(f"{path}: not {kind}")
    if state.get("version") != version:
        raise error(f"{path}: {label} version {state.get('version')!r}, expected {version}")
    return state


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
