"""Benchmark: what a replayed year costs Dagster alone, next to the replay's own figures.

The replay (`unified-assets replay`) runs one daily run per day: 12 assets (raw, warehouse,
features, three models' predictions and monitors) with their 20 asset checks, plus the ticks of
the sensors and schedules. This bench builds the same daily run from the code location's own
asset definitions (same keys, dependencies, partitions and check specs), with every asset's
body replaced by nothing (each check passes), and runs it for every day of the year on the
replay's instance (`cli.REPLAY_INSTANCE`, kept in memory as the replay keeps it). It also times
the ticks' own Dagster part: a sensor context with the warehouse resource built, four a day
(the landing sensor and three retraining sensors), and a schedule context that opens the
instance and builds its resources, one a day (the nightly scoring schedule).

What remains of the replay's time is the work of the assets, checks, sensors and trainings.
With `--ledger` (a replay's `replay_ledger.json`) the replay's own daily-run total is shown
beside the floor. Usage: python bench/bench_replay_floor.py [--days 365] [--ledger PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
TICKS_PER_DAY = {"sensor": 4, "schedule": 1}


def stand_ins(dg, defs, keys):
    """Empty assets with the real ones' keys, dependencies, partitions and checks; and empty
    stand-ins for the upstream assets outside the daily run (materialized once)."""
    graph = defs.resolve_asset_graph()
    daily, upstream = [], set()
    for key in keys:
        real = defs.resolve_assets_def(key)
        spec = next(s for s in real.specs if s.key == key)
        checks = [c for c in real.check_specs if c.asset_key == key]
        upstream.update(graph.get(key).parent_keys)
        daily.append(_empty(dg, key, list(spec.deps), spec.partitions_def, checks))
    outside = []
    for key in sorted(upstream - set(keys), key=str):
        node = graph.get(key)
        outside.append(_empty(dg, key, [], node.partitions_def, []))
    return daily, outside


def _empty(dg, key, deps, partitions_def, checks):
    names = [c.name for c in checks]

    @dg.asset(key=key, deps=deps, partitions_def=partitions_def, check_specs=checks)
    def empty():
        return dg.MaterializeResult(
            check_results=[dg.AssetCheckResult(check_name=n, passed=True) for n in names]
        )

    return empty


def step_seconds(run) -> dict[str, float]:
    """Each step's own duration in a run (Dagster's STEP_SUCCESS), by step key."""
    return {e.step_key: e.event_specific_data.duration_ms / 1000 for e in run.all_events
            if e.event_type_value == "STEP_SUCCESS"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--ledger", type=Path, help="a replay's replay_ledger.json")
    args = parser.parse_args()
    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning):
        warnings.filterwarnings("ignore", category=category)
    from unified_assets.cli import REPLAY_INSTANCE
    from unified_assets.definitions import build_defs
    from unified_assets.defs.jobs import DAILY_ASSETS, SCORING_ASSETS
    from unified_assets.defs.resources import WarehouseResource
    from unified_assets.defs.settings import Settings
    from unified_assets.lib.core.scratch import MEMORY

    home = Path(tempfile.mkdtemp(prefix="replay-floor-", dir=MEMORY))
    (home / "dagster.yaml").write_text(REPLAY_INSTANCE.format(dagster_home=home))
    settings = Settings.from_env(home=str(home / "data"))
    keys = [*DAILY_ASSETS, *SCORING_ASSETS]
    daily, outside = stand_ins(dg, build_defs(settings), keys)
    checks = sum(len(list(a.check_specs)) for a in daily)
    defs = dg.Definitions(assets=[*daily, *outside], executor=dg.in_process_executor)
    job = defs.resolve_implicit_global_asset_job_def()
    warehouse = {"warehouse": WarehouseResource(settings=settings)}
    runs, steps, sensor_ticks, schedule_ticks = [], [], [], []
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            for asset in outside:
                partitions = asset.partitions_def
                job.execute_in_process(
                    instance=instance, run_config=QUIET, asset_selection=[asset.key],
                    partition_key=partitions.get_first_partition_key() if partitions else None,
                )
            for n in range(args.days):
                day = (date(2013, 1, 1) + timedelta(days=n)).isoformat()
                started = time.perf_counter()
                run = job.execute_in_process(instance=instance, run_config=QUIET,
                                             asset_selection=keys, partition_key=day)
                runs.append(time.perf_counter() - started)
                steps.append(step_seconds(run))
                for _ in range(TICKS_PER_DAY["sensor"]):
                    started = time.perf_counter()
                    with dg.build_sensor_context(instance=instance, resources=warehouse) as c:
                        c.resources.warehouse  # noqa: B018 (built as the daemon builds it)
                    sensor_ticks.append(time.perf_counter() - started)
                started = time.perf_counter()
                with dg.build_schedule_context(instance=instance, resources=warehouse) as c:
                    c.resources.warehouse  # noqa: B018
                    c.instance  # noqa: B018
                schedule_ticks.append(time.perf_counter() - started)
                if n % 30 == 29:
                    print(f"{n + 1} days: {sum(runs):.0f} s of runs", flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "days": args.days, "steps_per_run": len(daily), "checks_per_run": checks,
        "daily_runs_s": round(sum(runs), 1),
        "first_month_ms_per_run": round(1000 * sum(runs[:31]) / len(runs[:31]), 1),
        "last_month_ms_per_run": round(1000 * sum(runs[-31:]) / len(runs[-31:]), 1),
        "sensor_ticks_s": round(sum(sensor_ticks), 1),
        "schedule_ticks_s": round(sum(schedule_ticks), 1),
    }
    result["floor_s"] = round(sum(runs) + sum(sensor_ticks) + sum(schedule_ticks), 1)
    result["step_ms_median"] = {k: round(1000 * statistics.median(d[k] for d in steps), 1)
                                for k in steps[0]}
    if args.ledger:
        ledger = json.loads(args.ledger.read_text())
        ingest = [r["seconds"] for r in ledger["runs"] if r["job"] == "ingest_daily"]
        result["replay_daily_runs_s"] = round(sum(ingest), 1)
        result["replay_all_runs_s"] = round(sum(r["seconds"] for r in ledger["runs"]), 1)
    print(json.dumps(result, indent=1))
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "replay_floor.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
