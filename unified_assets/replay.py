"""Replay: play a period forward day by day against a real Dagster instance.

Each simulated day: land the day's files, tick the landing sensor, run what it asks for; tick
the nightly scoring schedule at 04:00, run it; tick every retraining sensor, run what they ask
for. A run that fails goes to the failed-run sensor. Sensors and schedules are the code
location's own, called with a context as the daemon would call them; runs execute in this
process against the instance in DAGSTER_HOME, so the UI shows them afterwards.

Three parts: the `Daemon` does what Dagster's daemon would (ticks, run launches), the `Ledger`
records what happened, and the `Replayer` is the calendar of a simulated day.

A replay retrains by one of three policies: `loop` (the retraining sensors: the platform's
own), `calendar` (each model's monthly schedule: the same job, checks and gates on no
evidence) or `frozen` (never). With a scenario (lib/raw/scenarios.py) each day's landing files
are edited as they land. The daemon's cursors are saved beside the home (`save_state`), so a
copy of the home can be played on from where it stopped (`resume`).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import dagster as dg

from unified_assets.lib.core import config, database
from unified_assets.lib.deployment import manifests
from unified_assets.lib.raw import landing, scenarios

RUN_KEY_TAG = "dagster/run_key"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
"""Runs log to the instance, not the console: the replay prints each decision and each failed
run (with its first error line) itself; a gate's rejection is a decision (the run succeeds)."""


NOT_REPLAYED = {
    "online_refresh": "a replay has no online traffic: the online store and its parity with "
    "batch are built by `make run` and exercised by the serving tests",
}
"""Schedules the replay does not tick, and why."""

POLICIES = ("loop", "calendar", "frozen")
STATE_FILE = "replay_state.json"  # the daemon's cursors, in the home


@dataclass
class Ledger:
    """What the replay did, for the report: every run and every retraining decision."""

    runs: list[dict] = field(default_factory=list)
    retrainings: list[dict] = field(default_factory=list)
    skips: dict[str, int] = field(default_factory=dict)
    edits: list[dict] = field(default_factory=list)  # a scenario's edits, per day and file
    policy: str = "loop"
    scenario: dict = field(default_factory=dict)

    def skipped(self, name: str) -> None:
        self.skips[name] = self.skips.get(name, 0) + 1

    def dump(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(vars(self), indent=1, default=str))


class Daemon:
    """What Dagster's daemon does for the code location, called in this process: ticks its
    sensors, schedules and automation conditions, and launches the runs they request. Every
    run and skipped tick goes to the ledger."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance, ledger: Ledger,
                 log=print):
        self.defs = defs
        self.resources = dict(defs.resources or {})  # the code location's own, built once
        self.instance = instance
        self.ledger = ledger
        self.log = log
        repo = defs.get_repository_def()
        self.sensors = {s.name: s for s in repo.sensor_defs}
        self.schedules = {s.name: s for s in repo.schedule_defs}
        self.cursors: dict[str, str | None] = {}
        self.automation_cursor = None

    def required(self, definition: dg.SensorDefinition | dg.ScheduleDefinition) -> dict:
        """The resources a sensor or schedule asks for, and no others: the daemon builds only
        those for a tick (each resource built costs tens of milliseconds a tick)."""
        return {key: self.resources[key] for key in definition.required_resource_keys}

    def tick_sensor(self, name: str, now: datetime) -> list[dict]:
        """One tick of the sensor; returns the ledger entries of the runs it launched."""
        sensor = self.sensors[name]
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursors.get(name),
            resources=self.required(sensor), definitions=self.defs,
        ) as context:
            result = sensor(context)
            self.cursors[name] = context.cursor
        launched = [
            self.launch(request, request.job_name or sensor.job_name,
                        {"dagster/sensor_name": name}, now)
            for request in _requests(result)
        ]
        if isinstance(result, dg.SkipReason):
            self.ledger.skipped(name)
        return [entry for entry in launched if entry is not None]

    def tick_schedule(self, name: str, at: datetime) -> list[dict]:
        """The schedule's tick at `at`; returns the ledger entries of the runs it launched."""
        schedule = self.schedules[name]
        with dg.build_schedule_context(
            instance=self.instance, scheduled_execution_time=at, resources=self.required(schedule)
        ) as context:
            result = schedule(context)
        if isinstance(result, dg.SkipReason):
            self.ledger.skipped(name)
        origin = {"dagster/schedule_name": name, "dagster/scheduled_execution_time": at.isoformat()}
        launched = [self.launch(request, schedule.job_name, origin, at)
                    for request in _requests(result)]
        return [entry for entry in launched if entry is not None]

    def tick_automation(self, now: datetime) -> dict | None:
        """The daemon's automation sensor: assets whose AutomationCondition is true run."""
        result = dg.evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.automation_cursor,
            evaluation_time=now,
        )
        self.automation_cursor = result.cursor
        keys = [r.key for r in result.results if result.get_num_requested(r.key)]
        unpartitioned = [k for k in keys if not result.get_requested_partitions(k) - {None}]
        if not unpartitioned:
            return None
        request = dg.RunRequest(
            asset_selection=unpartitioned, tags={"unified_assets/trigger": "automation_condition"}
        )
        return self.launch(request, "__ASSET_JOB", {}, now)

    def launch(self, request: dg.RunRequest, job_name: str, origin: dict,
               now: datetime) -> dict | None:
        """Execute a run request unless a run with its run key already exists (as the daemon);
        returns the run's ledger entry, or None when it was not launched."""
        if request.run_key and self.instance.get_runs(
            filters=dg.RunsFilter(tags={RUN_KEY_TAG: request.run_key} | origin), limit=1
        ):
            return None
        job = (self.defs.resolve_implicit_global_asset_job_def() if job_name == "__ASSET_JOB"
               else self.defs.resolve_job_def(job_name))
        tags = dict(request.tags) | origin
        if request.run_key:
            tags[RUN_KEY_TAG] = request.run_key
        run_config = dict(request.run_config or {}) | QUIET
        started = time.perf_counter()
        result = job.execute_in_process(
            instance=self.instance, partition_key=request.partition_key,
            run_config=run_config, tags=tags, asset_selection=request.asset_selection,
            raise_on_error=False,
        )
        seconds = time.perf_counter() - started
        ours = {k: v for k, v in tags.items() if k.startswith("unified_assets/")}
        entry = {"sim_time": now.isoformat(), "job": job_name, "partition": request.partition_key,
                 "run_id": result.run_id, "success": result.success,
                 "seconds": round(seconds, 3), "tags": ours}
        self.ledger.runs.append(entry)
        if not result.success:
            failed = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
            error = failed[0].event_specific_data.error.message if failed else ""
            error = (error.splitlines() or [""])[0]
            self.log(f"  run {result.run_id[:8]} {job_name} {request.partition_key} FAILED: "
                     f"{error}")
            self.record_failure(result)
        return entry

    def record_failure(self, result: dg.ExecuteInProcessResult) -> None:
        """The failed-run sensor's tick for this run, as the daemon would give it."""
        sensor = self.sensors["record_failed_runs"]
        run = self.instance.get_run_by_id(result.run_id)
        with dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_event=result.get_run_failure_event(),
            dagster_instance=self.instance, dagster_run=run, resources=self.required(sensor),
        ) as context:
            sensor(context.for_run_failure())


class Replayer:
    """The calendar of simulated days: what the daemon is asked to do, and when, on each day;
    and each retraining's decision, noted in the ledger."""

    def __init__(self, settings, instance: dg.DagsterInstance, models: list[str], log=print,
                 policy: str = "loop", scenario: scenarios.Scenario | None = None):
        from unified_assets.definitions import build_defs

        if policy not in POLICIES:
            raise ValueError(f"policy {policy!r}: one of {POLICIES}")
        self.home = settings.home_path
        self.models = models
        self.log = log
        self.policy = policy
        self.scenario = scenario
        self.ledger = Ledger(policy=policy)
        if scenario is not None:
            self.ledger.scenario = {"name": scenario.name, "sha256": scenario.sha256,
                                    "start": str(scenario.start),
                                    "end": str(scenario.end or ""),
                                    "description": scenario.description,
                                    "edits": [e.describe() for e in scenario.edits]}
        self.daemon = Daemon(build_defs(settings), instance, self.ledger, log)

    def save_state(self) -> None:
        """The daemon's cursors, so that a copy of the home can be played on."""
        daemon = self.daemon
        state = {"cursors": daemon.cursors,
                 "automation": None if daemon.automation_cursor is None
                 else dg.serialize_value(daemon.automation_cursor)}
        (self.home / STATE_FILE).write_text(json.dumps(state))

    def resume(self) -> None:
        """Go on from the cursors the replay that built this home saved."""
        state = json.loads((self.home / STATE_FILE).read_text())
        self.daemon.cursors = state["cursors"]
        if state["automation"]:
            self.daemon.automation_cursor = dg.deserialize_value(state["automation"])

    def snapshot(self, to: Path) -> None:
        """A copy of the home as it is between two days (the warehouse checkpointed, the
        instance idle), to resume from."""
        database.checkpoint(config.warehouse_path(self.home))
        self.save_state()
        if to.exists():
            shutil.rmtree(to)
        shutil.copytree(self.home, to, symlinks=False)  # the instance's memory copy, on disk

    def play(self, start: date, end: date, bootstrap_end: date, progress=None,
             snapshots: dict[date, Path] | None = None) -> None:
        """Every day from `start` to `end`, with a copy of the home after each day of
        `snapshots`. The warehouse stays open throughout: the ticks and runs happen one after
        another in this process, and nothing else is waiting for it."""
        with database.held(config.warehouse_path(self.home)):
            day = start
            while day <= end:
                self.day(day, bootstrap_end)
                if progress:
                    progress(day)
                if snapshots and day in snapshots:
                    self.snapshot(snapshots[day])
                day += timedelta(days=1)
            self.save_state()

    def day(self, day: date, bootstrap_end: date) -> None:
        """Everything the daemon would do for one landed day."""
        daemon = self.daemon
        next_day = datetime.combine(day + timedelta(days=1), clock(), tzinfo=UTC)
        landing.land(self.home, through=day, start=day)
        if self.scenario is not None:
            edited = scenarios.apply(self.scenario, self.home, day)
            self.ledger.edits += edited
        daemon.tick_sensor("landing_sensor", next_day + timedelta(minutes=30))
        daemon.tick_automation(next_day + timedelta(minutes=45))
        if day == bootstrap_end:
            self.bootstrap(day, next_day + timedelta(hours=1))
        for name, schedule in daemon.schedules.items():
            at = fires_on(schedule.cron_schedule, next_day.date())
            if at is not None and name not in ("weekly_scorecard", *NOT_REPLAYED) \
                    and not name.startswith("retrain_"):
                daemon.tick_schedule(name, next_day + at)
        for model in self.models:
            self.retrain(model, next_day)
        at = fires_on(daemon.schedules["weekly_scorecard"].cron_schedule, next_day.date())
        if at is not None:  # after the morning's retrainings, so the week's decisions count
            daemon.tick_schedule("weekly_scorecard", next_day + at)

    def retrain(self, model: str, next_day: datetime) -> None:
        """The policy's retraining step for the morning after a day: the loop's sensor, the
        calendar's monthly schedule, or nothing (frozen)."""
        before = len(manifests.history(self.home, model))
        if self.policy == "loop":
            launched = self.daemon.tick_sensor(f"retrain_{model}_sensor",
                                               next_day + timedelta(hours=5))
        elif self.policy == "calendar":
            name = f"retrain_{model}_monthly"
            at = fires_on(self.daemon.schedules[name].cron_schedule, next_day.date())
            launched = [] if at is None else self.daemon.tick_schedule(name, next_day + at)
        else:
            launched = []
        if launched:
            self.note_retraining(model, launched[-1], before)

    def bootstrap(self, day: date, now: datetime) -> None:
        """The first model of each replayed model, trained on the days up to `day`."""
        from unified_assets.defs.monitoring.sensors import retrain_request
        from unified_assets.lib.models.specs import SPECS

        for model in self.models:
            before = len(manifests.history(self.home, model))
            request = retrain_request(SPECS[model], day, "bootstrap", {"first_model": True})
            entry = self.daemon.launch(request, f"retrain_{model}", {}, now)
            if entry is not None:
                self.note_retraining(model, entry, before)

    def note_retraining(self, model: str, run: dict, history_before: int) -> None:
        """The decision the retraining `run` left in the model's manifest history."""
        history = manifests.history(self.home, model)
        decided = history[history_before:] if len(history) > history_before else []
        status = decided[-1]["status"] if decided else "no decision (run failed)"
        tags = run["tags"]
        event = {"model": model, "sim_time": run["sim_time"],
                 "as_of": tags.get("unified_assets/as_of"),
                 "reason": tags.get("unified_assets/reason"),
                 "evidence": json.loads(tags.get("unified_assets/evidence", "{}")),
                 "status": status, "version": decided[-1]["version"] if decided else None,
                 "test_primary": decided[-1]["metrics"]["primary"] if decided else None,
                 "champion_primary": decided[-1].get("champion_primary") if decided else None,
                 "seconds": run["seconds"], "run_id": run["run_id"]}
        self.ledger.retrainings.append(event)
        self.log(f"  retraining {model} as of {event['as_of']} ({event['reason']}): {status}")


def fires_on(cron: str, day: date) -> timedelta | None:
    """When on `day` a daily, weekly or monthly cron string ("M H * * *", "M H * * D",
    "M H D * *") fires."""
    minute, hour, dom, month, dow = cron.split()
    if month != "*" or (dom != "*" and dow != "*"):
        raise ValueError(f"the replay ticks daily, weekly and monthly schedules only, not "
                         f"{cron!r}")
    if dow != "*" and int(dow) % 7 != (day.weekday() + 1) % 7:  # cron: 0 = Sunday
        return None
    if dom != "*" and int(dom) != day.day:
        return None
    return timedelta(hours=int(hour), minutes=int(minute))


def _requests(result) -> list[dg.RunRequest]:
    if result is None or isinstance(result, dg.SkipReason):
        return []
    if isinstance(result, dg.RunRequest):
        return [result]
    return [r for r in result if isinstance(r, dg.RunRequest)]
