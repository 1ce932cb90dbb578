"""Scenario runs: each shipped scenario under the loop and the monthly calendar, from one calm
prefix built once.

The calm year is replayed once up to the day before the latest scenario starts, with a copy of
its home saved the day before each scenario's start (`states/<day>`). Each scenario then
resumes from its copy twice, once per policy, and plays `days` days with its edits: the two
replays land the same files and score the same rows, so their realized metrics compare row by
row. The frozen policy needs no replay: it is the champion of the saved state scoring those
same rows. Each replay is a `unified-assets replay` process of its own (two at a time on two
cores), logged to `<scenario>/<policy>.log`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from unified_assets.lib.core import artifacts, config
from unified_assets.lib.raw.scenarios import Scenario

POLICIES = ("loop", "calendar")  # replayed; "frozen" is scored from the loop's rows
BOOTSTRAP_END = date(2013, 2, 28)
LAST_DAY = date(2013, 12, 31)


def _cli() -> list[str]:
    return [sys.executable, "-m", "unified_assets.cli"]


def resume_day(scenario: Scenario) -> date:
    return scenario.start - timedelta(days=1)


def window_end(scenario: Scenario, days: int) -> date:
    return min(LAST_DAY, scenario.start + timedelta(days=days - 1))


def build_prefix(work: Path, days: list[date], models: list[str], budget: int,
                 fresh: bool, bootstrap_end: date = BOOTSTRAP_END, log=print) -> Path:
    """The calm replay up to the last of `days`, with a saved state after each; reused while
    its models and budget are the same (the code version it was built with is recorded)."""
    states = work / "states"
    meta_path = states / "meta.json"
    wanted = {"models": models, "budget": budget, "bootstrap_end": str(bootstrap_end)}
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    have = set(meta.get("days", []))
    if not fresh and {k: meta.get(k) for k in wanted} == wanted \
            and {str(d) for d in days} <= have:
        if meta.get("code_version") != artifacts.code_version():
            log(f"note: the calm prefix in {states} was built by code version "
                  f"{meta.get('code_version')}; --fresh rebuilds it", flush=True)
        return states
    last = max(days)
    log(f"calm prefix: replaying {config.FIRST_DAY}..{last} once (states before each "
          "scenario's start)", flush=True)
    command = [*_cli(), "replay", "--home", str(work / "calm"), "--fresh",
               "--start", str(config.FIRST_DAY), "--end", str(last),
               "--bootstrap-end", str(bootstrap_end), "--models", ",".join(models),
               "--budget", str(budget), "--no-report"]
    for day in sorted(set(days)):
        command += ["--snapshot", f"{day}={states / str(day)}"]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    meta_path.write_text(json.dumps(wanted | {
        "days": sorted({str(d) for d in days}), "code_version": artifacts.code_version(),
        "seconds": round(time.perf_counter() - started, 1)}, indent=1))
    return states


def run_policies(work: Path, states: Path, loaded: list[Scenario], models: list[str],
                 budget: int, jobs: int, days: int, log=print) -> dict[str, dict[str, float]]:
    """Every scenario under every replayed policy, `jobs` replays at a time; the seconds of
    each."""
    queue = [(s, p) for s in loaded for p in POLICIES]
    running: list[tuple[Scenario, str, subprocess.Popen, float]] = []
    seconds: dict[str, dict[str, float]] = {s.name: {} for s in loaded}
    while queue or running:
        while queue and len(running) < max(1, jobs):
            scenario, policy = queue.pop(0)
            folder = work / scenario.name
            folder.mkdir(parents=True, exist_ok=True)
            command = [*_cli(), "replay", "--home", str(folder / policy), "--fresh",
                       "--resume", str(states / str(resume_day(scenario))),
                       "--policy", policy, "--scenario", scenario.path,
                       "--start", str(scenario.start),
                       "--end", str(window_end(scenario, days)),
                       "--models", ",".join(models), "--budget", str(budget), "--no-report"]
            output = (folder / f"{policy}.log").open("w")
            log(f"{scenario.name}: {policy} replay of {scenario.start}.."
                f"{window_end(scenario, days)} started (log: {output.name})", flush=True)
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
            output.close()  # the child has its own copy
            running.append((scenario, policy, process, time.perf_counter()))
        time.sleep(1)
        for item in list(running):
            scenario, policy, process, started = item
            if process.poll() is None:
                continue
            running.remove(item)
            took = time.perf_counter() - started
            seconds[scenario.name][policy] = round(took, 1)
            if process.returncode:
                raise RuntimeError(f"{scenario.name}: the {policy} replay failed (exit "
                                   f"{process.returncode}); see {work / scenario.name}/"
                                   f"{policy}.log")
            log(f"{scenario.name}: {policy} done in {took:.0f} s", flush=True)
    return seconds


def run_all(loaded: list[Scenario], base: Path, models: list[str], budget: int, jobs: int,
            fresh: bool, days: int, report_only: bool = False,
            bootstrap_end: date = BOOTSTRAP_END, log=print) -> Path:
    """Build (or reuse) the calm prefix, replay every scenario under each policy, and write
    the summary and one report per scenario into `base`/reports/scenarios."""
    work = base / "scenarios"
    started = time.perf_counter()
    timing_path = work / "timing.json"
    if report_only:
        timing = json.loads(timing_path.read_text())
        states = work / "states"
    else:
        states = build_prefix(work, [resume_day(s) for s in loaded], models, budget, fresh,
                              bootstrap_end, log)
        prefix_s = time.perf_counter() - started
        seconds = run_policies(work, states, loaded, models, budget, jobs, days, log)
        timing = {"prefix_s": round(prefix_s, 1), "replays_s": seconds,
                  "total_s": round(time.perf_counter() - started, 1)}
        timing_path.write_text(json.dumps(timing, indent=1))
    from unified_assets.lib.monitoring import scenario_report

    out = base / "reports" / "scenarios"
    return scenario_report.write_all(loaded, work, states, models, out, timing, days)
