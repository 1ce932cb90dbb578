"""The retraining sensor, ticked with a context against a temporary Dagster instance, and the
monitored days it decides on."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import duckdb
import pandas as pd
import pytest

from unified_assets.defs.monitoring.sensors import health
from unified_assets.lib.core import config, database
from unified_assets.lib.models import specs
from unified_assets.lib.monitoring import model_health
from unified_assets_tests.support.runs import tick
from unified_assets_tests.support.synthetic import monitor_four_days


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
                   "measured_at": datetime.now(UTC)}
            model_health.replace_days(conn, model_health.DRIFT_TABLE, "delay_classifier", day,
                                    day + timedelta(days=1), pd.DataFrame([row]))
    finally:
        conn.close()


def _finished_retraining(instance, as_of: str, status=dg.DagsterRunStatus.SUCCESS):
    instance.add_run(dg.DagsterRun(
        job_name="retrain_delay_classifier", run_id=str(uuid.uuid4()), status=status,
        tags={"unified_assets/as_of": as_of, "unified_assets/model": "delay_classifier"},
    ))


def test_retraining_sensor_asks_once_with_reason_and_evidence(home, defs, instance):
    policy = {"retrain_drift_days": 3, "retrain_cooldown_days": 14}
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
    with dg.DagsterInstance.ephemeral() as done:
        _finished_retraining(done, "2013-05-03")
        asked = 0
        for i in range(6, 12):
            _plant_monitoring(home, [(date(2013, 5, i), True)])
            requests, result, cursor = tick(defs, name, home, done, cursor, **policy)
            asked += len(requests)
            assert "cooling down" in result.skip_message
        assert asked == 0
        _plant_monitoring(home, [(date(2013, 5, 18), True)])
        requests, _, _ = tick(defs, name, home, done, cursor, **policy)
    assert len(requests) == 1  # 15 days after the last retraining's as-of day


def test_the_sensor_reads_each_monitored_days_estimate_beside_its_drift():
    """Four days monitored with the performance estimate (unit/monitoring/test_estimation.py):
    the days the retraining decision reads carry each day's estimate and realized value."""
    spec = specs.DELAY_CLASSIFIER
    conn = duckdb.connect()
    first = monitor_four_days(conn)["first"]
    recorded = model_health.estimates(conn, spec.name)
    last = conn.execute("SELECT value FROM monitoring.performance_daily "
                        "ORDER BY day DESC LIMIT 1").fetchall()[0][0]
    model_health.replace_days(conn, model_health.DRIFT_TABLE, spec.name, first, first,
                            pd.DataFrame())  # creates the table
    for i, version in enumerate(["old", "old", "new", "new"]):
        conn.execute(f"INSERT INTO {model_health.DRIFT_TABLE} (model, day, model_version, "
                     "is_drift, prediction_psi, drifted_share) VALUES (?, ?, ?, false, 0.01, 0)",
                     [spec.name, first + timedelta(days=i), version])
    days = health(conn, spec)
    assert [d.estimated is None for d in days] == [True, True, False, False]
    assert days[2].estimated == pytest.approx(recorded["value"].iloc[0])
    assert days[3].estimated_rows == 3_000
    assert days[3].realized == pytest.approx(last) and days[3].realized_rows > 0
