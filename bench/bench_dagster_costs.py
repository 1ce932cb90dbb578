"""Benchmark: what Dagster's own bookkeeping costs per run, per step, per asset check and per
log line, on the default SQLite instance, for in-process runs of one daily partition (the shape
of the replay's and the daemon's daily runs).

Each variant is a job of empty assets (nothing computed, nothing read), so the time is Dagster's
alone: creating the run and its planned events, executing the steps, writing their events.
Variants alternate within each repeat; the table gives the median per run and, from the
differences, the cost of one more step, one more check and one more log line. Those costs
explain where a replayed day goes beyond the work of its steps (README, Performance).

Four instances side by side: the default one; one whose compute log manager is Dagster's
NoOpComputeLogManager (stdout and stderr of steps not captured: the default starts a `tail` and
an orphan-watching Python process for every run); the replay's instance configuration
(`cli.REPLAY_INSTANCE`), which also keeps every run's events in Dagster's consolidated SQLite
event log (one file, where the default opens a new file per run and mirrors asset and check
events into an index file); and that one in a folder in memory (/dev/shm), as the replay keeps
its instance while it runs (lib/core/scratch.py). The instances' folders are removed at the end.
Usage: python bench/bench_dagster_costs.py [--runs 20]
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
CHECKS, STEPS, LOGS = 10, 8, 10


def variants(dg):
    daily = dg.DailyPartitionsDefinition(start_date="2013-01-01")

    @dg.asset(partitions_def=daily)
    def one_step():
        return dg.MaterializeResult()

    chain, previous = [], None
    for i in range(STEPS):

        @dg.asset(name=f"step_{i}", partitions_def=daily, deps=[previous] if previous else [])
        def step():
            return dg.MaterializeResult()

        chain.append(step)
        previous = step

    names = [f"check_{i}" for i in range(CHECKS)]

    @dg.asset(partitions_def=daily, check_specs=[dg.AssetCheckSpec(n, asset="checked")
                                                 for n in names])
    def checked():
        return dg.MaterializeResult(
            check_results=[dg.AssetCheckResult(check_name=n, passed=True) for n in names]
        )

    @dg.asset(partitions_def=daily)
    def logging_step(context):
        for i in range(LOGS):
            context.log.info(f"line {i}")
        return dg.MaterializeResult()

    return {
        "1 step": [one_step],
        f"{STEPS} steps": chain,
        f"1 step, {CHECKS} checks": [checked],
        f"1 step, {LOGS} log lines": [logging_step],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    import dagster as dg

    from unified_assets.cli import NO_COMPUTE_LOGS, REPLAY_INSTANCE, TELEMETRY_OFF
    from unified_assets.lib.core.scratch import MEMORY

    configs = {  # name: (dagster.yaml, where the instance's folder is)
        "default": (TELEMETRY_OFF, None),
        "no compute logs": (TELEMETRY_OFF + NO_COMPUTE_LOGS, None),
        "no compute logs, consolidated event log": (REPLAY_INSTANCE, None),
        "the same in memory (the replay's)": (REPLAY_INSTANCE, MEMORY),
    }
    instances, homes = {}, []
    for name, (config, where) in configs.items():
        home = Path(tempfile.mkdtemp(prefix="dagster-costs-", dir=where))
        homes.append(home)
        (home / "dagster.yaml").write_text(config.format(dagster_home=home))
        os.environ["DAGSTER_HOME"] = str(home)
        instances[name] = dg.DagsterInstance.get()
    jobs = variants(dg)
    seconds = {(i, name): [] for i in instances for name in jobs}
    for day in range(args.runs + 3):
        for i, instance in instances.items():
            for name, assets in jobs.items():
                started = time.perf_counter()
                dg.materialize(assets, instance=instance, run_config=QUIET,
                               partition_key=f"2013-02-{1 + day % 28:02d}")
                if day >= 3:  # the first runs create the instance's databases
                    seconds[i, name].append(time.perf_counter() - started)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "runs_per_variant": args.runs,
    }
    print("| instance | " + " | ".join(jobs) + " | one more step | a check | a log line |")
    print("|---" * (len(jobs) + 4) + "|")
    for i in instances:
        ms = {name: 1000 * statistics.median(seconds[i, name]) for name in jobs}
        base = ms["1 step"]
        costs = {
            "median_ms_per_run": {k: round(v, 1) for k, v in ms.items()},
            "per_extra_step_ms": round((ms[f"{STEPS} steps"] - base) / (STEPS - 1), 1),
            "per_check_ms": round((ms[f"1 step, {CHECKS} checks"] - base) / CHECKS, 1),
            "per_log_line_ms": round((ms[f"1 step, {LOGS} log lines"] - base) / LOGS, 1),
        }
        result[i] = costs
        print(f"| {i} | " + " | ".join(f"{v:.0f}" for v in ms.values()) + " | "
              f"{costs['per_extra_step_ms']} | {costs['per_check_ms']} | "
              f"{costs['per_log_line_ms']} |")
    print(f"\nmilliseconds, median of {args.runs} runs each; {result['machine']}")
    out = REPO / "bench" / "results" / "dagster_costs.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    for home in homes:
        shutil.rmtree(home)


if __name__ == "__main__":
    main()
