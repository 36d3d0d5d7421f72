"""What every rule cost: Snakemake ``benchmark:`` files -> a cost table per scene and stage.

Every rule of the workflow writes a benchmark file (Snakemake's ``benchmark:`` directive) at
``{results}/benchmarks/{rule}/{dataset}/{scene}[/{extra wildcard}].tsv``; aggregate rules without a
scene write ``{results}/benchmarks/{rule}.tsv``. Snakemake's columns (one row per repeat) include
``s`` (wall seconds), ``max_rss`` (peak resident set size, MB), ``max_vms``, ``io_in``, ``io_out``,
``mean_load`` and ``cpu_time`` (user + system CPU seconds of the job's processes).

Snakemake *samples* ``cpu_time`` and ``max_rss`` (every 0.5 s for the first 15 s of a job, then
every 30 s), so for a job longer than 15 s they miss up to the last 30 s: measured on the demo,
``render_benchmark_views`` 15.1 CPU-s in its benchmark file against 38 s by ``time`` for the same
job, and every job between 15 and 45 s long read about 15 s. Each job therefore logs its exact
figures from ``getrusage`` as its last line (:func:`san.pipeline.adapter.resources_line`);
:func:`load_benchmarks` takes ``cpu_s`` and ``max_rss_mb`` from the job's log where that line is
present (column ``source``: ``rusage``), from the benchmark file otherwise (``snakemake``).

:func:`load_benchmarks` reads them into one row per job; :func:`cost_table` gives the report's
table (stage, scene, wall / CPU seconds, peak RSS) with a total row per scene; :func:`suggest_resources`
turns the measured peaks into Slurm ``runtime`` (minutes) and ``mem_mb`` with a safety factor.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from san.utils.progress import RESOURCES_LINE

COLUMNS = ("rule", "dataset", "scene", "job", "wall_s", "cpu_s", "max_rss_mb", "source")


class BenchmarkError(ValueError):
    """A benchmark file that cannot be read; the message names the file."""


def benchmark_labels(path: str | os.PathLike) -> dict[str, str]:
    """``rule``, ``dataset``, ``scene`` and ``job`` (the extra wildcard, e.g. a variant) of a
    benchmark path ``.../benchmarks/{rule}[/{dataset}/{scene}[/{job}]].tsv``.

    Raises:
        BenchmarkError: the path has no ``benchmarks`` folder.
    """
    parts = Path(path).with_suffix("").parts
    if "benchmarks" not in parts[:-1]:
        raise BenchmarkError(f"{path}: not under a benchmarks/ folder")
    i = len(parts) - 1 - parts[::-1].index("benchmarks")
    rest = list(parts[i + 1 :])
    return {
        "rule": rest[0],
        "dataset": rest[1] if len(rest) > 2 else "",
        "scene": rest[2] if len(rest) > 2 else "",
        "job": "/".join(rest[3:]) if len(rest) > 3 else "",
    }


def _number(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v


def job_resources(log_path: str | os.PathLike) -> dict[str, float] | None:
    """``{"wall_s", "cpu_s", "max_rss_mb"}`` from the last ``job resources | ...`` line of a job's log
    (:func:`san.pipeline.adapter.resources_line`); ``None`` if the log is missing or has none (a
    job from before the line existed, or one that failed)."""
    try:
        lines = Path(log_path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        at = line.find(RESOURCES_LINE + " |")
        if at < 0:
            continue
        fields = {}
        for part in line[at:].split("|")[1:]:
            key, _, value = part.strip().partition(" ")
            fields[key] = _number(value)
        if all(k in fields and not math.isnan(fields[k]) for k in ("wall_s", "cpu_s", "max_rss_mb")):
            return fields
    return None


def load_benchmarks(
    paths: Sequence[str | os.PathLike], logs: Sequence[str | os.PathLike | None] | None = None
) -> pd.DataFrame:
    """One row per benchmark file (the mean over its repeats), columns :data:`COLUMNS`.

    Snakemake writes ``NA`` for what it could not measure (for example the RSS of a job that ended
    before the first sample); those become NaN. ``logs`` (the same jobs' log files, in the same
    order) give the exact ``cpu_s`` and ``max_rss_mb`` where they hold a :func:`job_resources`
    line (module docstring); ``wall_s`` always comes from the benchmark file.

    Raises:
        BenchmarkError: an unreadable benchmark file, or ``logs`` of another length than ``paths``.
    """
    if logs is not None and len(logs) != len(paths):
        raise BenchmarkError(f"{len(paths)} benchmark files but {len(logs)} log files: they must pair up")
    rows = []
    for i, p in enumerate(paths):
        try:
            df = pd.read_csv(p, sep="\t", na_values=["NA", "-"])
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise BenchmarkError(f"{p}: cannot read benchmark file ({e})") from e
        if "s" not in df.columns or df.empty:
            raise BenchmarkError(f"{p}: no 's' (wall seconds) column: not a Snakemake benchmark file")
        row = benchmark_labels(p)
        row["wall_s"] = _number(df["s"].mean())
        row["cpu_s"] = _number(df["cpu_time"].mean()) if "cpu_time" in df.columns else math.nan
        row["max_rss_mb"] = _number(df["max_rss"].max()) if "max_rss" in df.columns else math.nan
        row["source"] = "snakemake"
        exact = job_resources(logs[i]) if logs is not None and logs[i] else None
        if exact is not None:
            row.update(cpu_s=exact["cpu_s"], max_rss_mb=exact["max_rss_mb"], source="rusage")
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def cost_table(df: pd.DataFrame, stage_order: Sequence[str] = ()) -> pd.DataFrame:
    """Per scene and stage: ``jobs``, ``wall_s`` (sum), ``cpu_s`` (sum), ``max_rss_mb`` (max), in
    ``stage_order`` (then alphabetical), with a ``total`` row per scene (peak RSS = the largest
    job's). Scene-less rules (the report) are listed under scene ``(all)``."""
    if df.empty:
        return pd.DataFrame(columns=["scene", "stage", "jobs", "wall_s", "cpu_s", "max_rss_mb"])
    d = df.assign(scene=[f"{a}/{b}" if b else "(all)" for a, b in zip(df["dataset"], df["scene"])])
    g = (
        d.groupby(["scene", "rule"], sort=False)
        .agg(
            jobs=("wall_s", "size"), wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"), max_rss_mb=("max_rss_mb", "max")
        )
        .reset_index()
        .rename(columns={"rule": "stage"})
    )
    order = {s: i for i, s in enumerate(stage_order)}
    g["_o"] = [order.get(s, len(order)) for s in g["stage"]]
    out = []
    for scene, part in g.sort_values(["scene", "_o", "stage"]).groupby("scene", sort=True):
        out.append(part.drop(columns="_o"))
        out.append(
            pd.DataFrame(
                [
                    {
                        "scene": scene,
                        "stage": "total",
                        "jobs": int(part["jobs"].sum()),
                        "wall_s": part["wall_s"].sum(),
                        "cpu_s": part["cpu_s"].sum(min_count=1),
                        "max_rss_mb": part["max_rss_mb"].max(),
                    }
                ]
            )
        )
    return pd.concat(out, ignore_index=True)


def suggest_resources(
    df: pd.DataFrame, factor: float = 1.5, min_mem_mb: int = 1000, min_runtime_min: int = 5
) -> dict[str, dict[str, int]]:
    """Slurm resources per rule from measured costs: ``mem_mb`` = ``factor`` x the largest peak RSS
    (rounded up to 500 MB), ``runtime`` = ``factor`` x the longest wall time (minutes, rounded up).

    Args:
        df: :func:`load_benchmarks` rows (any number of scenes).
        factor: safety factor over the measured maximum.
        min_mem_mb, min_runtime_min: floors.
    """
    out: dict[str, dict[str, int]] = {}
    for rule, part in df.groupby("rule"):
        rss = part["max_rss_mb"].max()
        wall = part["wall_s"].max()
        mem = min_mem_mb if math.isnan(rss) else max(min_mem_mb, int(math.ceil(rss * factor / 500.0) * 500))
        runtime = min_runtime_min if math.isnan(wall) else max(min_runtime_min, int(math.ceil(wall * factor / 60.0)))
        out[str(rule)] = {"mem_mb": mem, "runtime": runtime}
    return out


def caption(df: pd.DataFrame, machine: Mapping[str, object] | None = None) -> str:
    """The cost table's caption: what the columns are and where they were measured."""
    where = ""
    if machine:
        where = " Measured on " + ", ".join(f"{k} {v}" for k, v in machine.items()) + "."
    exact = int((df["source"] == "rusage").sum()) if "source" in df.columns else 0
    source = (
        f"CPU seconds (user + system) and peak resident memory of {exact} of {len(df)} jobs from the kernel's "
        "accounting (getrusage, logged by each job), of the others from Snakemake's sampling, which misses the "
        "end of jobs longer than 15 s."
    )
    return (
        "Cost per scene and stage: wall seconds (Snakemake benchmark files) and CPU seconds summed over the stage's "
        "jobs, peak resident memory (MB) of the largest job. " + source + " Jobs that ran side by side shared the "
        "machine." + where
    )


STAGE_ORDER = (
    "make_demo_scene",
    "prepare_poses",
    "train_nerf",
    "extract_mesh",
    "cache_features",
    "train_imitation",
    "time_teacher",
    "evaluate_segmentation",
    "render_benchmark_views",
    "evaluate_benchmark_teacher",
    "evaluate_benchmark",
)
"""The default DAG's per-scene stages, in pipeline order (the cost table's row order)."""


def cost_figure(table: pd.DataFrame, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Two panels per scene: wall seconds per stage (bars) and peak RSS per stage (MB)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from san.utils.io import atomic_path

    rows = table[table["stage"] != "total"]
    scenes = list(dict.fromkeys(rows["scene"]))
    fig, axes = plt.subplots(
        len(scenes), 2, figsize=(11, 0.5 + 0.45 * max(4, len(rows) / max(1, len(scenes)))), squeeze=False
    )
    for ax_row, scene in zip(axes, scenes):
        part = rows[rows["scene"] == scene]
        y = range(len(part))
        ax_row[0].barh(list(y), part["wall_s"], color="tab:blue")
        ax_row[0].set_xlabel("wall seconds (sum over the stage's jobs)")
        ax_row[1].barh(list(y), part["max_rss_mb"].fillna(0), color="tab:orange")
        ax_row[1].set_xlabel("peak RSS, MB (largest job)")
        for ax in ax_row:
            ax.set_yticks(list(y), [f"{s} (x{j})" if j > 1 else s for s, j in zip(part["stage"], part["jobs"])])
            ax.invert_yaxis()
            ax.grid(axis="x", alpha=0.3)
        ax_row[0].set_title(scene, loc="left", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return path
