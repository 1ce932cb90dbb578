"""Benchmark: the data layers over a week, on the default SQLite instance and on the production
Postgres instance (deploy/dagster.yaml), side by side on the same landing files.

Each run is `dagster asset materialize -m unified_assets.definitions --select 'group:raw or
group:warehouse or group:marts' --partition-range 2013-01-01...<day N>` in a fresh process, with a
fresh warehouse and a fresh instance:
- sqlite: DAGSTER_HOME without dagster.yaml (SQLite run, event-log and schedule storage);
- postgres: DAGSTER_HOME with deploy/dagster.yaml, a fresh database in a local PostgreSQL server
  started by this script (Debian's package; default, durable settings) on the same disk;
- the same two with DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true (`-1-planned`: one
  planned event per asset instead of one per asset and day, as `unified-assets build` runs).

Variants alternate within each repeat; the table gives the median and fastest wall time of the
process (on a shared machine the fastest is the least disturbed), the sum of the run's step times
(the work, including the events each step writes), their difference (start-up, planning and the
run's own events), and the events the run wrote to the instance.
Usage: python bench/bench_instance.py [--days 7] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import repo_path  # noqa: F401  (the repository root on sys.path, for the test support)
from bench_foundation import DATA_LAYERS, timed

from unified_assets.lib.raw import landing
from unified_assets_tests.support.postgres import PostgresServer, find_bin_dir

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("sqlite", "postgres", "sqlite-1-planned", "postgres-1-planned")


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """These variables set in this process for the block (the instance reads its connection)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_stats(dagster_home: Path) -> tuple[float, int]:
    """Sum of the run's step durations (s) and the number of events the run stored."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (record,) = instance.get_run_records()
        events = instance.all_logs(record.dagster_run.run_id)
        steps = [e for e in events if e.dagster_event_type == dg.DagsterEventType.STEP_SUCCESS]
        step_s = sum(e.dagster_event.event_specific_data.duration_ms for e in steps) / 1000
        return step_s, len(events)


def event_ms(dagster_home: Path, n: int) -> float:
    """Milliseconds to store one materialization event (n written one by one, as steps do)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("bench_event"))  # warm-up
        start = time.perf_counter()
        for i in range(n):
            instance.report_runless_asset_event(
                dg.AssetMaterialization("bench_event", metadata={"i": i})
            )
        return (time.perf_counter() - start) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--events", type=int, default=300, help="events per storage probe")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]

    bin_pg = find_bin_dir()
    if bin_pg is None and any(v.startswith("postgres") for v in variants):
        raise SystemExit("PostgreSQL is not installed: apt-get install postgresql")
    first = date(2013, 1, 1)
    last = first + timedelta(days=args.days - 1)
    root = Path(tempfile.mkdtemp(prefix="bench-instance-"))
    source = root / "landed"
    landing.land(source, through=last)
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "dagster"), "asset", "materialize", "-m",
               "unified_assets.definitions", "--select", DATA_LAYERS,
               "--partition-range", f"{first}...{last}"]
    results: dict[str, list[dict]] = {v: [] for v in variants}
    per_event: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    server = PostgresServer(bin_pg, durable=True) if bin_pg else None
    try:
        if server:
            server.start()
        for i in range(args.repeat):
            for variant in variants:
                home = root / f"{variant}-{i}"
                shutil.copytree(source, home)
                dagster_home = home / "dagster_home"
                dagster_home.mkdir()
                env = dict(os.environ, UNIFIED_ASSETS_HOME=str(home),
                           DAGSTER_HOME=str(dagster_home))
                if variant.endswith("-1-planned"):
                    env["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = "true"
                pg_env: dict[str, str] = {}
                if variant.startswith("postgres"):
                    database = server.create_database(f"bench_{variant.replace('-', '_')}_{i}")
                    pg_env = server.dagster_env(database)
                    shutil.copy(REPO / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
                    env |= pg_env
                wall, rss, _ = timed(command, env)
                with environment(pg_env):  # the parent reads the run back from its storage
                    step_s, events = run_stats(dagster_home)
                results[variant].append(
                    {"wall_s": wall, "steps_s": step_s, "events": events, "rss_mib": rss}
                )
                print(f"run {i + 1} {variant:18} {wall:7.2f} s (steps {step_s:6.2f} s, "
                      f"{events} events)", flush=True)
                shutil.rmtree(home, ignore_errors=True)
        # The storage alone: one event at a time into a fresh instance of each kind.
        for i in range(args.repeat):
            for kind in per_event:
                if kind == "postgres" and server is None:
                    continue
                dagster_home = root / f"events-{kind}-{i}"
                dagster_home.mkdir()
                pg_env = {}
                if kind == "postgres":
                    pg_env = server.dagster_env(server.create_database(f"bench_events_{i}"))
                    shutil.copy(REPO / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
                with environment(pg_env):
                    per_event[kind].append(event_ms(dagster_home, args.events))
                print(f"events {i + 1} {kind:8} {per_event[kind][-1]:6.2f} ms/event", flush=True)
    finally:
        if server:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)

    def median(variant: str, field: str) -> float:
        return statistics.median(r[field] for r in results[variant])

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}; {args.days} days ({first}..{last}), median of {args.repeat}")
    base = variants[0]
    print(f"| instance | median wall (s) | fastest wall (s) | median x {base} | sum of step times "
          "(s) | wall - steps (s) | events in the run |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for v in variants:
        wall, steps = median(v, "wall_s"), median(v, "steps_s")
        fastest = min(r["wall_s"] for r in results[v])
        summary[v] = {"median_wall_s": wall, "min_wall_s": fastest, "median_steps_s": steps,
                      "events": int(median(v, "events"))}
        print(f"| {v} | {wall:.2f} | {fastest:.2f} | {wall / median(base, 'wall_s'):.2f} | "
              f"{steps:.2f} | {wall - steps:.2f} | {summary[v]['events']} |")
    print(f"\nstoring one materialization event ({args.events} in a row, median of {args.repeat}):")
    for kind, values in per_event.items():
        if values:
            summary[f"{kind}_ms_per_event"] = statistics.median(values)
            print(f"  {kind}: {statistics.median(values):.2f} ms")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "instance.json").write_text(json.dumps(
        {"machine": machine, "days": args.days, "at": time.strftime("%Y-%m-%d %H:%M"),
         "summary": summary, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
