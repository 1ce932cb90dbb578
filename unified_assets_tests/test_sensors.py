"""Sensors and the schedule, ticked with a context against a temporary Dagster instance."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from unified_assets.defs.raw.sensors import REFERENCE_ASSETS
from unified_assets.lib.core import config, database
from unified_assets.lib.monitoring import model_health
from unified_assets.lib.raw import landing
from unified_assets_tests.helpers import resources_for, run


@pytest.fixture(scope="module")
def defs():
    from unified_assets.definitions import defs

    return defs


def tick(defs, name: str, home, instance, cursor=None, **settings):
    sensor = defs.resolve_sensor_def(name)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=resources_for(home, **settings)
    ) as context:
        result = sensor(context)
    requests = [] if isinstance(result, dg.SkipReason) or result is None else (
        [result] if isinstance(result, dg.RunRequest) else list(result))  # fmt: skip
    return requests, result, context.cursor


def test_landing_sensor_requests_each_landed_day_once(home, defs):
    instance = dg.DagsterInstance.ephemeral()
    # an empty warehouse: the dimensions first, the days only once they exist
    requests, _, cursor = tick(defs, "landing_sensor", home, instance)
    assert [(r.job_name, r.partition_key) for r in requests] == [("ingest_reference", None)]
    assert run(home, None, None, dg.AssetSelection.assets(*REFERENCE_ASSETS)).success
    requests, _, cursor = tick(defs, "landing_sensor", home, instance, cursor)
    assert [(r.job_name, r.partition_key) for r in requests] == [
        ("ingest_daily", "2013-01-01"), ("ingest_daily", "2013-01-02"),
        ("ingest_daily", "2013-01-03")]  # fmt: skip
    keys = {r.partition_key: r.run_key for r in requests}
    sha = landing.sha256_file(landing.daily_file(home, "flights", date(2013, 1, 2)))
    assert keys["2013-01-02"].startswith(f"ingest:2013-01-02:{sha[:12]}:")
    assert requests[0].tags["unified_assets/files"] == "flights/2013-01-01,weather/2013-01-01"

    # the same files again: nothing to do
    requests, result, cursor = tick(defs, "landing_sensor", home, instance, cursor)
    assert requests == [] and "no new or changed file" in result.skip_message

    # a corrected file for one day: exactly that partition, under a new run key
    path = landing.daily_file(home, "weather", date(2013, 1, 2))
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    requests, _, cursor = tick(defs, "landing_sensor", home, instance, cursor)
    assert [r.partition_key for r in requests] == ["2013-01-02"]
    assert requests[0].run_key != keys["2013-01-02"]

    # a day is requested only once both its files are there
    flights4 = landing.landing_root(home) / "flights" / "2013-01-04.csv"
    flights4.write_bytes(landing.daily_file(home, "flights", date(2013, 1, 3)).read_bytes())
    requests, result, cursor = tick(defs, "landing_sensor", home, instance, cursor)
    assert requests == [] and "incomplete" in result.skip_message
    landing.land(home, through=date(2013, 1, 4), start=date(2013, 1, 4))
    requests, _, cursor = tick(defs, "landing_sensor", home, instance, cursor)
    assert [r.partition_key for r in requests] == ["2013-01-04"]


def test_landing_sensor_does_not_ingest_again_what_raw_holds(home, defs):
    assert run(home).success
    requests, result, _ = tick(defs, "landing_sensor", home, dg.DagsterInstance.ephemeral())
    assert requests == [] and "already ingested" in result.skip_message


def _plant_monitoring(home, days: list[tuple[date, bool]], version="a" * 64):
    conn = database.connect(config.warehouse_path(home))
    try:
        database.ensure_schemas(conn)
        for day, drifted in days:
            row = {"model": "delay_classifier", "day": day, "model_version": version,
                   "rows": 6300, "prediction_psi": 0.4 if drifted else 0.01,
                   "max_feature_psi": 1.0, "drifted_features": 12 if drifted else 0,
                   "drifted_share": 0.4 if drifted else 0.0, "is_drift": drifted,
                   "input_dq": 0.99, "top_features": "temp_f=1.00",
                   "measured_at": datetime.now(UTC)}  # fmt: skip
            model_health.replace_days(conn, model_health.DRIFT_TABLE, "delay_classifier", day,
                                    day + timedelta(days=1), pd.DataFrame([row]))  # fmt: skip
    finally:
        conn.close()


def _finished_retraining(instance, as_of: str, status=dg.DagsterRunStatus.SUCCESS):
    instance.add_run(dg.DagsterRun(
        job_name="retrain_delay_classifier", run_id=str(uuid.uuid4()), status=status,
        tags={"unified_assets/as_of": as_of, "unified_assets/model": "delay_classifier"},
    ))  # fmt: skip


def test_retraining_sensor_asks_once_with_reason_and_evidence(home, defs):
    policy = {"retrain_drift_days": 3, "retrain_cooldown_days": 14}
    instance = dg.DagsterInstance.ephemeral()
    name = "retrain_delay_classifier_sensor"
    start = date(2013, 5, 1)
    _plant_monitoring(home, [(start + timedelta(days=i), i > 0) for i in range(3)])
    requests, result, cursor = tick(defs, name, home, instance, None, **policy)
    assert requests == [] and "drift streak 2" in result.skip_message
    assert cursor == "2013-05-03"
    requests, result, cursor = tick(defs, name, home, instance, cursor, **policy)
    assert requests == [] and "no monitored day after 2013-05-03" in result.skip_message

    _plant_monitoring(home, [(date(2013, 5, 4), True)])
    requests, _, cursor = tick(defs, name, home, instance, cursor, **policy)
    (request,) = requests
    assert request.tags["unified_assets/reason"] == "drift"
    evidence = json.loads(request.tags["unified_assets/evidence"])
    assert evidence["days"] == ["2013-05-02", "2013-05-03", "2013-05-04"]
    assert request.tags["unified_assets/as_of"] == "2013-05-03"  # outcomes known a day later
    assert request.run_key == "retrain:delay_classifier:2013-05-03"
    op = request.run_config["ops"]["models__delay_classifier_training_set"]
    assert op["config"]["as_of"] == "2013-05-03"

    # while that retraining runs, a drifting week asks for nothing more...
    _finished_retraining(instance, "2013-05-03", dg.DagsterRunStatus.STARTED)
    _plant_monitoring(home, [(date(2013, 5, 5), True)])
    requests, result, _ = tick(defs, name, home, instance, cursor, **policy)
    assert requests == [] and "already queued or running" in result.skip_message
    # ...and once it is done, the cool-down holds the next one back
    instance = dg.DagsterInstance.ephemeral()
    _finished_retraining(instance, "2013-05-03")
    asked = 0
    for i in range(6, 12):
        _plant_monitoring(home, [(date(2013, 5, i), True)])
        requests, result, cursor = tick(defs, name, home, instance, cursor, **policy)
        asked += len(requests)
        assert "cooling down" in result.skip_message
    assert asked == 0
    _plant_monitoring(home, [(date(2013, 5, 18), True)])
    requests, _, _ = tick(defs, name, home, instance, cursor, **policy)
    assert len(requests) == 1  # 15 days after the last retraining's as-of day


def test_nightly_scoring_waits_for_a_model_and_its_features(home, defs):
    schedule = defs.resolve_schedule_def("nightly_scoring")
    instance = dg.DagsterInstance.ephemeral()
    resources = resources_for(home)
    at = datetime(2013, 1, 3, 4, tzinfo=UTC)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=at,
                                   resources=resources) as context:  # fmt: skip
        result = schedule(context)
    assert isinstance(result, dg.SkipReason) and "no promoted model yet" in result.skip_message
