"""The per-rule cost table built from Snakemake benchmark files."""

import math

import pytest

from san.report.costs import BenchmarkError, benchmark_labels, cost_table, load_benchmarks, suggest_resources

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _bench(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{s}\t0:00:00\t{rss}\t0\t0\t0\t0\t0\t0\t{cpu}\n" for s, rss, cpu in rows))
    return path


def test_labels_from_the_benchmark_path():
    assert benchmark_labels("results/benchmarks/train_nerf/llff/fern.tsv")["rule"] == "train_nerf"
    assert benchmark_labels("r/benchmarks/train_imitation/llff/fern/no_aug.tsv") == {
        "rule": "train_imitation",
        "dataset": "llff",
        "scene": "fern",
        "job": "no_aug",
    }
    assert benchmark_labels("r/benchmarks/make_tables.tsv") == {
        "rule": "make_tables",
        "dataset": "",
        "scene": "",
        "job": "",
    }
    with pytest.raises(BenchmarkError, match="not under a benchmarks/ folder"):
        benchmark_labels("results/logs/x.tsv")


def test_cost_table_sums_per_stage_and_scene(tmp_path):
    b = tmp_path / "benchmarks"
    files = [
        _bench(b / "train_nerf/demo/demo/nerf.tsv", [(100.0, 900.0, 180.0)]),
        _bench(
            b / "train_imitation/demo/demo/full.tsv", [(30.0, 1200.0, 29.0), (50.0, 1000.0, 31.0)]
        ),  # 2 repeats: mean 40 s
        _bench(b / "train_imitation/demo/demo/no_aug.tsv", [(20.0, 1500.0, 19.0)]),
        _bench(b / "make_tables.tsv", [(2.0, "NA", 1.5)]),
    ]
    df = load_benchmarks(files)
    assert len(df) == 4
    table = cost_table(df, stage_order=("train_nerf", "train_imitation"))
    demo = table[table["scene"] == "demo/demo"]
    assert list(demo["stage"]) == ["train_nerf", "train_imitation", "total"]
    imit = demo[demo["stage"] == "train_imitation"].iloc[0]
    assert imit["jobs"] == 2 and imit["wall_s"] == pytest.approx(60.0) and imit["cpu_s"] == pytest.approx(49.0)
    assert imit["max_rss_mb"] == 1500.0
    total = demo[demo["stage"] == "total"].iloc[0]
    assert total["wall_s"] == pytest.approx(160.0) and total["max_rss_mb"] == 1500.0 and total["jobs"] == 3
    report = table[table["scene"] == "(all)"]
    assert math.isnan(report.iloc[0]["max_rss_mb"])


def test_suggested_slurm_resources_round_up_with_a_margin(tmp_path):
    b = tmp_path / "benchmarks"
    df = load_benchmarks(
        [
            _bench(b / "train_nerf/a/b.tsv", [(610.0, 2100.0, 1200.0)]),
            _bench(b / "train_nerf/a/c.tsv", [(30.0, 700.0, 20.0)]),
        ]
    )
    assert suggest_resources(df, factor=1.5) == {"train_nerf": {"mem_mb": 3500, "runtime": 16}}


def test_a_file_that_is_not_a_benchmark_is_named(tmp_path):
    p = tmp_path / "benchmarks" / "x" / "y.tsv"
    p.parent.mkdir(parents=True)
    p.write_text("a\tb\n1\t2\n")
    with pytest.raises(BenchmarkError, match="y.tsv"):
        load_benchmarks([p])


def test_make_cost_table_writes_table_figure_and_suggests_resources(tmp_path):
    from san.pipeline.report import make_cost_table

    b = tmp_path / "results" / "benchmarks"
    files = [
        _bench(b / "prepare_poses/demo/demo.tsv", [(1.0, 300.0, 1.0)]),
        _bench(b / "train_nerf/demo/demo.tsv", [(120.0, 2000.0, 230.0)]),
        _bench(b / "train_imitation/demo/demo/full.tsv", [(60.0, 1500.0, 59.0)]),
    ]
    out = {k: tmp_path / f"cost.{k}" for k in ("csv", "md", "tex")}
    suggested = make_cost_table(files, **out, figure=tmp_path / "cost.png")
    assert suggested["train_nerf"] == {"mem_mb": 3000, "runtime": 5}
    text = out["md"].read_text()
    assert "train_nerf" in text and "total" in text and "benchmark" in text
    assert (tmp_path / "cost.png").read_bytes()[:4] == b"\x89PNG"


def test_every_rule_with_a_log_has_a_benchmark():
    """Every job's cost reaches the report: a rule that logs also writes a benchmark file."""
    import re
    from pathlib import Path

    rules_dir = Path(__file__).resolve().parents[2] / "workflow" / "rules"
    missing = []
    for smk in sorted(rules_dir.glob("*.smk")):
        for block in re.split(r"\n(?=rule )", smk.read_text()):
            name = re.match(r"rule (\w+):", block)
            if name and "    log:" in block and "    benchmark:" not in block:
                missing.append(f"{smk.name}: {name.group(1)}")
    assert not missing, f"rules without a benchmark: directive: {missing}"


def test_job_logs_override_the_sampled_cpu_and_memory(tmp_path):
    """Snakemake samples cpu_time / max_rss (every 0.5 s for 15 s, then every 30 s): a job's own
    getrusage line in its log wins; the wall time stays the benchmark file's."""
    b, logs = tmp_path / "benchmarks", tmp_path / "logs"
    files = [
        _bench(b / "render_benchmark_views/demo/demo.tsv", [(44.0, 800.0, 15.1)]),
        _bench(b / "train_nerf/demo/demo.tsv", [(93.0, 1000.0, 74.0)]),
    ]
    logs.mkdir()
    (logs / "render.log").write_text(
        "2026-12-02 07:17:38,1 [render_benchmark_views demo/demo] san INFO rendering\n"
        "2026-12-02 07:17:38,2 [render_benchmark_views demo/demo] san INFO job resources | wall_s 43.10 | "
        "cpu_s 38.52 | max_rss_mb 912.3\n"
    )
    (logs / "nerf.log").write_text("an older run's log without the line\n")
    df = load_benchmarks(files, [logs / "render.log", logs / "nerf.log"])
    render, nerf = df.iloc[0], df.iloc[1]
    assert render["cpu_s"] == pytest.approx(38.52) and render["max_rss_mb"] == pytest.approx(912.3)
    assert render["wall_s"] == pytest.approx(44.0) and render["source"] == "rusage"
    assert nerf["cpu_s"] == pytest.approx(74.0) and nerf["source"] == "snakemake"
    assert load_benchmarks(files, [None, tmp_path / "missing.log"])["source"].tolist() == ["snakemake"] * 2
    with pytest.raises(BenchmarkError, match="must pair up"):
        load_benchmarks(files, [logs / "render.log"])
