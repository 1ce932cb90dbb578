"""Benchmark: all of 2013 through raw, warehouse and marts, the pipeline next to bare SQL.

- pipeline: `dagster asset materialize --select 'group:raw or group:warehouse or group:marts'
  --partition-range 2013-01-01...2013-12-31`,
  one run with every check, pandera validation and DQ score, in a fresh process, against a
  SQLite-backed Dagster instance (the default of `make run`);
- pipeline-1-planned: the same with DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true (one
  "planned" event per asset instead of one per asset and day; what `unified-assets build` uses);
- bare: the same SQL (ingest, curate, marts from unified_assets.lib) in one DuckDB connection
  in a fresh process, with no Dagster, no validation and no DQ.

Both read the same landing files, each into its own fresh warehouse. Wall time and peak RSS of
each process are measured by the parent (wait4), alternating runs, median of --repeat.
Usage: python bench/bench_foundation.py [--repeat 3] [--through 2013-12-31]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

DATA_LAYERS = "group:raw or group:warehouse or group:marts"

BARE = """
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from unified_assets.lib.sources import SOURCES
from unified_assets.lib.raw import ingest
from unified_assets.lib.raw import landing
from unified_assets.lib.marts import monthly
from unified_assets.lib.warehouse import transforms
from unified_assets.lib.core import database

home = Path(sys.argv[1])
start, end = date.fromisoformat(sys.argv[2]), date.fromisoformat(sys.argv[3])
now = datetime.now()
conn = database.connect(home / "unified_assets.duckdb")
database.ensure_schemas(conn)
with database.transaction(conn):
    for table in landing.REFERENCE_TABLES:
        f = ingest.inspect_file(landing.reference_file(home, table), home, conn)
        ingest.replace_reference(conn, table, f, now)
    for table in landing.DAILY_TABLES:
        days = [start + timedelta(days=i) for i in range((end - start).days)]
        files = [(ingest.inspect_file(landing.daily_file(home, table, d), home, conn), d)
                 for d in days]
        ingest.replace_daily(conn, table, files, start, end, now)
with database.transaction(conn):
    for spec in (SOURCES[n].curation for n in ("airlines", "airports", "planes")):
        transforms.curate(conn, spec, now)
    for spec in (SOURCES["flights"].curation, SOURCES["weather"].curation):
        transforms.curate(conn, spec, now, start, end)
    for table in monthly.MARTS:
        monthly.refresh(conn, table)
print(conn.execute("SELECT count(*) FROM warehouse.fct_flights").fetchone()[0])
"""


def timed(
    args: list[str], env: dict[str, str], allow_exit: tuple[int, ...] = (0,)
) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB, and stdout of one child process."""
    out = tempfile.TemporaryFile()
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out.seek(0)
    text = out.read().decode()
    if os.waitstatus_to_exitcode(status) not in allow_exit:
        raise SystemExit(f"{args[:4]} failed with exit {status}: {text[-2000:]}")
    return wall, usage.ru_maxrss / 1024, text


def step_seconds(dagster_home: Path) -> float:
    """Sum of the run's step durations, from the instance's event log."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (run,) = instance.get_run_records()
        events = instance.all_logs(run.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
        return sum(e.dagster_event.event_specific_data.duration_ms for e in events) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--through", type=date.fromisoformat, default=date(2013, 12, 31))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from unified_assets.lib.raw import landing

    root = Path(tempfile.mkdtemp(prefix="bench-foundation-"))
    source = root / "landed"
    t0 = time.perf_counter()
    landing.land(source, through=args.through)
    land_s = time.perf_counter() - t0
    end = args.through.isoformat()
    end_excl = date.fromordinal(args.through.toordinal() + 1).isoformat()
    bin_dir = Path(sys.executable).parent
    variants = ("bare", "pipeline", "pipeline-1-planned")
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    steps: dict[str, list[float]] = {v: [] for v in variants[1:]}
    try:
        for i in range(args.repeat):
            for variant in variants:
                home = root / f"{variant}-{i}"
                shutil.copytree(source, home)
                env = dict(os.environ, UNIFIED_ASSETS_HOME=str(home),
                           DAGSTER_HOME=str(home / "dagster_home"))
                (home / "dagster_home").mkdir()
                if variant == "pipeline-1-planned":
                    env["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = "true"
                if variant == "bare":
                    cmd = [sys.executable, "-c", BARE, str(home), "2013-01-01", end_excl]
                else:
                    cmd = [str(bin_dir / "dagster"), "asset", "materialize", "-m",
                           "unified_assets.definitions", "--select", DATA_LAYERS,
                           "--partition-range", f"2013-01-01...{end}"]
                wall, rss, _ = timed(cmd, env)
                results[variant].append((wall, rss))
                extra = ""
                if variant in steps:
                    steps[variant].append(step_seconds(home / "dagster_home"))
                    extra = f"  (steps {steps[variant][-1]:.2f} s)"
                print(f"run {i + 1} {variant:18} {wall:7.2f} s {rss:6.0f} MiB{extra}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = {
        v: {"median_s": statistics.median(w for w, _ in runs),
            "peak_rss_mib": max(r for _, r in runs)}
        for v, runs in results.items()
    }
    for v, seconds in steps.items():
        summary[v]["median_steps_s"] = statistics.median(seconds)
    ratio = summary["pipeline"]["median_s"] / summary["bare"]["median_s"]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}; landing 2013-01-01..{end}: {land_s:.2f} s (not in either)")
    bare = summary["bare"]["median_s"]
    print("| variant | median wall (s) | x bare | sum of step times (s) | peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    for v, s in summary.items():
        step_s = f"{s['median_steps_s']:.2f}" if "median_steps_s" in s else "-"
        print(f"| {v} | {s['median_s']:.2f} | {s['median_s'] / bare:.1f} | {step_s} | "
              f"{s['peak_rss_mib']:.0f} |")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "foundation.json").write_text(
        json.dumps(
            {
                "machine": machine,
                "through": end,
                "landing_s": land_s,
                "summary": summary,
                "ratio": ratio,
                "runs": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
