"""Size and read speed of the feature cache under each compression of ``san.features.cache``.

Copies the ``rgb`` and ``features/*`` datasets of a real cache (``--cache``, read-only) into a
temporary file per compression (:data:`san.features.config.COMPRESSION_FILTERS`, the exact filters
the writer uses, one view per chunk), then reads every view back, ``--repeats`` times (after one
warm-up pass). Writes, per compression and dataset: stored bytes, ratio ``raw / stored``, % saved,
write seconds, and the median read throughput of decoded data (MB/s) and per-view read time.
Reads hit the page cache (files just written) with HDF5's chunk cache off: they time
decompression, not the disk. Example::

    python benchmarks/bench_cache_compression.py --cache results/demo/demo/features/sam_untrained_tiny.h5 \\
        --out benchmarks/results/cache_compression.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import h5py

from san.features.config import COMPRESSION_FILTERS, DEFAULT_COMPRESSION


def _datasets(src: h5py.File) -> list[str]:
    return ["rgb"] + [f"features/{k}" for k in sorted(src["features"].keys(), key=int)]


def measure(cache: Path, repeats: int = 3, views: int | None = None) -> dict:
    with h5py.File(cache, "r") as src:
        names = _datasets(src)
        n = src["rgb"].shape[0] if views is None else min(views, src["rgb"].shape[0])
        data = {name: src[name][:n] for name in names}
        source = {
            name: {
                "compression": src[name].compression,
                "shuffle": bool(src[name].shuffle),
                "stored_bytes": int(src[name].id.get_storage_size()),
            }
            for name in names
        }
        teacher = str(src.attrs.get("teacher", ""))
    results = {}
    with tempfile.TemporaryDirectory(prefix="san-bench-h5-") as tmp:
        for option, filters in COMPRESSION_FILTERS.items():
            path = Path(tmp) / f"{option}.h5"
            row = {}
            t0 = time.perf_counter()
            with h5py.File(path, "w") as f:
                for name, arr in data.items():
                    f.create_dataset(name, data=arr, chunks=(1, *arr.shape[1:]), **filters)
            write_s = time.perf_counter() - t0
            with h5py.File(path, "r", rdcc_nbytes=0) as f:  # no chunk cache: every read decompresses
                for name, arr in data.items():
                    ds = f[name]
                    for i in range(n):  # warm-up pass
                        ds[i]
                    times = []
                    for _ in range(repeats):
                        t = time.perf_counter()
                        for i in range(n):
                            ds[i]
                        times.append(time.perf_counter() - t)
                    stored = int(ds.id.get_storage_size())
                    read_s = statistics.median(times)
                    row[name] = {
                        "raw_bytes": int(arr.nbytes),
                        "stored_bytes": stored,
                        "ratio": arr.nbytes / stored,
                        "saved_percent": 100.0 * (1 - stored / arr.nbytes),
                        "read_MB_per_s": arr.nbytes / 1e6 / read_s,
                        "read_ms_per_view": 1000.0 * read_s / n,
                    }
            row["write_s_all_datasets"] = write_s
            row["file_bytes"] = os.path.getsize(path)
            results[option] = row
    return {
        "cache": str(cache),
        "teacher": teacher,
        "views": int(n),
        "dtypes": {name: str(arr.dtype) for name, arr in data.items()},
        "shapes": {name: list(arr.shape) for name, arr in data.items()},
        "source_filters": source,
        "repeats": repeats,
        "default_compression": DEFAULT_COMPRESSION,
        "results": results,
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs; shared with other jobs (busy): read speeds are indicative",
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def markdown(report: dict) -> str:
    lines = [
        f"Feature-cache compression on `{report['cache']}` ({report['views']} views, teacher `{report['teacher']}`; "
        f"measured {report['measured']}, {report['machine']}).",
        "",
        "| compression | dataset | ratio | saved | read MB/s | read ms/view |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for option, row in report["results"].items():
        for name, r in row.items():
            if isinstance(r, dict):
                lines.append(
                    f"| {option} | {name} | {r['ratio']:.3f} | {r['saved_percent']:.1f} % | {r['read_MB_per_s']:.0f} | {r['read_ms_per_view']:.2f} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", required=True, type=Path, help="a feature cache .h5 (only read)")
    p.add_argument("--out", required=True, type=Path, help="JSON to write (a .md table is written beside it)")
    p.add_argument("--repeats", type=int, default=3, help="timed read passes over every view (median)")
    p.add_argument("--views", type=int, default=None, help="first N views only (default: all)")
    args = p.parse_args(argv)
    report = measure(args.cache, args.repeats, args.views)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
