"""From a drifted day's landing file to a new manifest, with the real Dagster daemon.

1. `unified-assets replay` builds a home up to --through (first model as of --bootstrap-end).
2. `dagster-daemon run` starts on that home's instance with the sensors on
   (UNIFIED_ASSETS_AUTOMATION=on) and the default 30 s sensor interval.
3. The next day lands with its weather readings shifted (a recalibrated upstream sensor), the
   clock starts, and the bench polls until the model's manifest history has a new decision.

The decision is set to act on one drifted day, judged alone (UNIFIED_ASSETS_RETRAIN_DRIFT_DAYS=1,
UNIFIED_ASSETS_DRIFT_WINDOW_DAYS=1, no cool-down): what is measured is the way from the file to
the manifest, not how long the default policy waits before it believes a drift.

Prints the time, and the runs the daemon launched with their durations.

    .venv/bin/python bench/bench_drift_to_manifest.py [--through 2013-03-05]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

BIN = Path(sys.executable).parent
MODEL = "delay_classifier"


def shift_weather(path: Path) -> None:
    """Every reading moved well outside the season, still physically possible."""
    import pandas as pd

    frame = pd.read_csv(path)
    frame["temp"] = frame["temp"] + 35
    frame["dewp"] = frame["dewp"] + 35
    frame["humid"] = (frame["humid"] * 0.3).round(2)
    frame["wind_speed"] = frame["wind_speed"] * 2.5
    frame["wind_gust"] = frame["wind_gust"] * 2.5
    frame["pressure"] = frame["pressure"] - 25
    frame["visib"] = (frame["visib"] / 4).round(2)
    frame["precip"] = frame["precip"] + 0.3
    frame.to_csv(path, index=False)


def settle(env: dict, quiet_s: float = 40) -> None:
    """Wait until the daemon has run for a while and no run started or finished for `quiet_s`
    (longer than a sensor interval): whatever its first ticks asked for is done."""
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    import dagster as dg

    instance = dg.DagsterInstance.get()
    started = time.time()
    while True:
        time.sleep(5)
        records = instance.get_run_records(limit=1)
        busy = instance.get_runs(filters=dg.RunsFilter(statuses=[
            dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED]), limit=1)
        last = max([started] + [r.end_time or r.create_timestamp.timestamp() for r in records])
        if not busy and time.time() - last > quiet_s:
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--through", type=date.fromisoformat, default=date(2013, 3, 5))
    parser.add_argument("--bootstrap-end", type=date.fromisoformat, default=date(2013, 2, 28))
    parser.add_argument("--budget", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="drift-bench-"))
    env = dict(os.environ, UNIFIED_ASSETS_HOME=str(base),
               UNIFIED_ASSETS_SEARCH_BUDGET=str(args.budget),
               UNIFIED_ASSETS_RETRAIN_DRIFT_DAYS="1", UNIFIED_ASSETS_DRIFT_WINDOW_DAYS="1",
               UNIFIED_ASSETS_RETRAIN_COOLDOWN_DAYS="0")
    env.pop("DAGSTER_HOME", None)
    started = time.perf_counter()
    subprocess.run([str(BIN / "unified-assets"), "replay", "--end", str(args.through),
                    "--bootstrap-end", str(args.bootstrap_end), "--budget", str(args.budget)],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    print(f"replayed to {args.through} in {time.perf_counter() - started:.0f} s")
    home = base / "replay"
    env |= {"UNIFIED_ASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home"),
            "UNIFIED_ASSETS_AUTOMATION": "on"}
    history = home / "deployments" / MODEL / "history"
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", "unified_assets.definitions"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        settle(env)  # the daemon's first ticks may act on the replayed days: let them finish
        before = len(list(history.iterdir()))
        day = args.through + timedelta(days=1)
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from unified_assets.lib.core import files
        from unified_assets.lib.raw import landing

        scratch = base / "scratch"  # shifted away from the landing zone, then landed whole
        landing.land(scratch, through=day, start=day)
        shift_weather(landing.daily_file(scratch, "weather", day))
        t0 = time.perf_counter()
        for table in ("flights", "weather"):
            files.write_atomic(landing.expected_daily_file(home, table, day),
                               landing.daily_file(scratch, table, day).read_bytes())
        while time.perf_counter() - t0 < args.timeout:
            if len(list(history.iterdir())) > before:
                break
            time.sleep(1)
        else:
            print(f"no new manifest within {args.timeout:.0f} s", file=sys.stderr)
            return 1
        elapsed = time.perf_counter() - t0
        newest = json.loads(sorted(history.iterdir())[-1].read_text())
        print(f"drifted landing file -> {newest['status']} manifest in {elapsed:.0f} s")
        runs = subprocess.run(
            [sys.executable, "-c", _RUNS], env=env, capture_output=True, text=True, check=True
        ).stdout
        print(runs)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
    return 0


# The daemon's runs since the drifted file landed: job, trigger and wall time.
_RUNS = """
import dagster as dg
inst = dg.DagsterInstance.get()
for r in reversed(inst.get_run_records(limit=4)):
    run = r.dagster_run
    took = (r.end_time or 0) - (r.start_time or 0)
    why = run.tags.get("unified_assets/reason") or run.tags.get("unified_assets/trigger", "")
    print(f"{run.job_name:28s} {why:12s} {run.status.value:8s} {took:6.1f} s")
"""

if __name__ == "__main__":
    sys.exit(main())
