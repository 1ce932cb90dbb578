"""Sensors that act on monitoring: retrain a model that drifts or loses performance (realized,
or estimated before the labels), record failed runs for the CI/CD reliability KPI, and tell a
person (lib/monitoring/alerts.py) what needs one."""

import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd

from unified_assets.defs.jobs import (
    AS_OF_TAG,
    EVIDENCE_TAG,
    KIND_TAG,
    MODEL_TAG,
    REASON_TAG,
    key,
    retrain_job,
    sensor_status,
)
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib.deployment import manifests
from unified_assets.lib.models.specs import ModelSpec
from unified_assets.lib.monitoring import alerts, model_health, retraining

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def retrain_request(spec: ModelSpec, as_of: date, reason: str, evidence: dict,
                    rolling_days: str = "") -> dg.RunRequest:
    """A retraining of `spec` on the windows that end with `as_of` (`rolling_days`: other
    windows than the settings' or the spec's), tagged with why."""
    op = "__".join(key("models", spec, "training_set").path)
    config = {"as_of": str(as_of)} | ({"rolling_days": rolling_days} if rolling_days else {})
    return dg.RunRequest(
        run_key=f"retrain:{spec.name}:{as_of}",
        run_config=dg.RunConfig(ops={op: {"config": config}}),
        tags={MODEL_TAG: spec.name, KIND_TAG: "retrain", AS_OF_TAG: str(as_of),
              REASON_TAG: reason, EVIDENCE_TAG: json.dumps(evidence, sort_keys=True)},
    )


def health(conn, spec: ModelSpec) -> list[retraining.DayHealth]:
    """The model's monitored days, as the decision reads them: drift and the estimate of the
    day scored on each, and the realized value of the day whose outcomes matured on it."""
    drifts, perf = model_health.history(conn, spec.name)
    realized = {} if perf.empty else {
        r.day: (r.value, r.rows) for r in perf.itertuples() if r.value == r.value
    }
    guesses = model_health.estimates(conn, spec.name)
    estimated = {r.day: (r.value, r.rows) for r in guesses.itertuples() if r.value == r.value}
    days = []
    for r in drifts.itertuples():
        value, rows = realized.get(r.day, (None, 0))
        guess, guessed = estimated.get(r.day, (None, 0))
        days.append(retraining.DayHealth(
            day=r.day.date() if hasattr(r.day, "date") else r.day,
            model_version=r.model_version, is_drift=bool(r.is_drift),
            prediction_psi=r.prediction_psi, drifted_share=r.drifted_share,
            realized=value, realized_rows=int(rows or 0),
            estimated=guess, estimated_rows=int(guessed or 0),
            inputs_broken=getattr(r, "inputs_broken", None) is not pd.NA
            and bool(getattr(r, "inputs_broken", False)),
            drift_rows=None if pd.isna(r.rows) else int(r.rows),
        ))
    return days


def serving_as_of(home, spec: ModelSpec) -> date | None:
    """The serving model's last labelled day (the end of its test window), or None."""
    current = manifests.current(home, spec.name)
    test = (current or {}).get("windows", {}).get("test")
    return date.fromisoformat(test[1]) - timedelta(days=1) if test else None


def last_retrain(instance: dg.DagsterInstance, job_name: str
                 ) -> tuple[date | None, bool, str]:
    """The as-of day of the model's last retraining run, whether one is in progress, and why
    the last one was asked for."""
    busy = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=IN_PROGRESS),
                             limit=1)
    for run in instance.get_runs(filters=dg.RunsFilter(job_name=job_name), limit=20):
        if AS_OF_TAG in run.tags:
            return date.fromisoformat(run.tags[AS_OF_TAG]), bool(busy), \
                run.tags.get(REASON_TAG, "")
    return None, bool(busy), ""


def retraining_alerts(spec: ModelSpec, days: list[retraining.DayHealth],
                      decision: retraining.Decision, serving_as_of: date | None,
                      policy: retraining.RetrainPolicy) -> list[alerts.Alert]:
    """What the decision must tell a person: a retraining refused on a broken feed (once per
    broken streak), a serving model past its age (once per version)."""
    told = []
    if decision.refused == "broken_feed":
        since = retraining.broken_since(days)
        told.append(alerts.refused_feed(spec.name, str(since), str(days[-1].day),
                                        decision.message))
    age = retraining.overdue_age(days, serving_as_of, policy)
    if age is not None and days[-1].model_version:
        told.append(alerts.overdue(spec.name, days[-1].model_version, age,
                                   policy.max_age_days))
    return told


def retraining_sensor(spec: ModelSpec) -> dg.SensorDefinition:
    job = retrain_job(spec)

    @dg.sensor(
        name=f"retrain_{spec.name}_sensor",
        job=job,
        minimum_interval_seconds=30,
        default_status=sensor_status(),
        description=f"Reads {spec.name}'s monitoring after each scored day; requests a "
        "retraining when drift persists or realized performance falls past its floor, or its "
        "estimate does before the labels can tell, tagged with the reason and evidence. One at "
        "a time, with a cool-down.",
    )
    def sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        try:
            with warehouse.connect(read_only=True, timeout_s=10) as conn:
                days = health(conn, spec)
        except RuntimeError as exc:
            return dg.SkipReason(f"warehouse busy: {exc}")
        if not days:
            return dg.SkipReason(f"{spec.name}: nothing monitored yet")
        latest = str(days[-1].day)
        if context.cursor == latest:
            return dg.SkipReason(f"{spec.name}: no monitored day after {latest}")
        policy = warehouse.settings.retrain_policy()
        last, busy, last_reason = last_retrain(context.instance, job.name)
        lag = timedelta(days=spec.label_lag_days)  # as-of days, on the monitored days' clock
        serving = serving_as_of(warehouse.home_path, spec)
        rejected = manifests.last_rejected(warehouse.home_path, spec.name)
        decision = retraining.decide(days, policy, spec.gates.metric_floor,
                                     spec.higher_is_better, last and last + lag, busy,
                                     serving and serving + lag, rejected, last_reason)
        if busy:  # look at this day again once the running retraining has finished
            return dg.SkipReason(f"{spec.name}: {decision.message}")
        context.update_cursor(latest)
        for alert in retraining_alerts(spec, days, decision, serving and serving + lag, policy):
            alerts.raise_alert(warehouse.home_path, alert, warehouse.settings.alert_channels())
        if not decision.retrain:
            return dg.SkipReason(f"{spec.name}: {decision.message}")
        as_of = days[-1].day - timedelta(days=spec.label_lag_days)
        context.log.info(f"{spec.name}: retrain as of {as_of}: {decision.message}")
        return retrain_request(spec, as_of, decision.reason, decision.evidence,
                               policy.rolling_days(decision.reason))

    return sensor


CALENDAR_CRON = "0 5 1 * *"


def calendar_schedule(spec: ModelSpec) -> dg.ScheduleDefinition:
    """The fixed alternative to the loop: retrain on the 1st of every month at 05:00, through
    the same job, checks and gates, on no evidence. Stopped by default, also when automation
    is on: a team turns it on instead of the retraining sensor, and the scenario replays run
    it beside the loop (`unified-assets scenarios`). Its job is the retraining sensor's."""

    @dg.schedule(
        name=f"retrain_{spec.name}_monthly",
        job_name=f"retrain_{spec.name}",
        cron_schedule=CALENDAR_CRON,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Retrains {spec.name} on the 1st of each month on the labelled days up "
        "to then (the calendar policy; the retraining sensor is the loop).",
    )
    def schedule(context: dg.ScheduleEvaluationContext):
        scored = context.scheduled_execution_time.date() - timedelta(days=1)
        as_of = scored - timedelta(days=spec.label_lag_days)
        return retrain_request(spec, as_of, "calendar", {"month": str(scored)[:7]})

    return schedule


@dg.run_failure_sensor(
    name="record_failed_runs",
    monitor_all_code_locations=False,
    default_status=sensor_status(),
    description="Appends every failed run (job, tags, error) to monitoring/failed_runs.jsonl in "
    "the home folder: the failures that count against CI/CD reliability.",
)
def record_failed_runs(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    run = context.dagster_run
    failed = {
        "run_id": run.run_id, "job": run.job_name,
        "model": run.tags.get(MODEL_TAG), "kind": run.tags.get(KIND_TAG),
        "reason": run.tags.get(REASON_TAG), "error": context.failure_event.message,
        "recorded_at": datetime.now(UTC).isoformat(),
    }
    model_health.record_failed_run(warehouse.home_path, failed)
    alerts.raise_alert(warehouse.home_path, alerts.failed_run(failed),
                       warehouse.settings.alert_channels())


@dg.sensor(
    name="deliver_alerts",
    minimum_interval_seconds=60,
    default_status=sensor_status(),
    description="Delivers again the alerts a channel (webhook, e-mail) failed to take, with a "
    "growing wait; an alert is raised once per event and delivered once per channel.",
)
def deliver_alerts(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    channels = warehouse.settings.alert_channels()
    if not channels.enabled:
        return dg.SkipReason("no alert channel configured")
    counts = alerts.deliver_pending(warehouse.home_path, channels)
    return dg.SkipReason(f"alerts: {counts['delivered']} delivered, {counts['pending']} "
                         f"pending, {counts['given_up']} given up")
