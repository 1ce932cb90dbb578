"""The production instance: deploy/dagster.yaml, unchanged, against a real PostgreSQL server.

The server is Debian's PostgreSQL, started for this module on 127.0.0.1 with a free port in a
temporary folder and stopped at the end (even when a test fails). Each test gets its own database
and DAGSTER_HOME; the connection reaches the shipped file through the DAGSTER_PG_* variables, as
it would in production. Without PostgreSQL the tests skip (fail under UNIFIED_ASSETS_CI=1).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import yaml

from unified_assets.defs.jobs import MODEL_TAG, REFERENCE_ASSETS
from unified_assets.lib.models.specs import SPECS
from unified_assets.lib.raw import landing
from unified_assets_tests.support.postgres import HINT, PostgresServer, find_bin_dir
from unified_assets_tests.support.programs import REPO, require_program
from unified_assets_tests.support.reads import scalar
from unified_assets_tests.support.runs import resources_for, run

DEPLOY_YAML = REPO / "deploy" / "dagster.yaml"
BIN = Path(sys.executable).parent
LANDED = ["2013-01-01", "2013-01-02", "2013-01-03"]  # the `home` fixture's days
TRIGGER_TAG = "unified_assets/trigger"  # the landing sensor's runs carry trigger=landing


@pytest.fixture(scope="module")
def postgres():
    bin_dir = find_bin_dir() or Path(require_program("initdb", HINT)).parent
    with PostgresServer(bin_dir) as server:
        yield server


@pytest.fixture
def database(postgres) -> str:
    """A fresh, empty Postgres database for one test's instance."""
    return postgres.create_database(f"dagster_{uuid.uuid4().hex[:10]}")


@pytest.fixture
def pg_instance(postgres, database, tmp_path, monkeypatch):
    """A DagsterInstance from the shipped deploy/dagster.yaml over a fresh Postgres database."""
    for name, value in postgres.dagster_env(database).items():
        monkeypatch.setenv(name, value)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(DEPLOY_YAML, dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    instance = dg.DagsterInstance.get()
    try:
        yield instance
    finally:
        instance.dispose()


def key_literal(path: list[str]) -> str:
    """An asset key as the event log stores it, quoted for SQL."""
    return "'" + dg.AssetKey(path).to_string().replace("'", "''") + "'"


def test_the_shipped_file_is_a_postgres_instance_with_a_run_queue_and_pools(
    pg_instance, postgres, database, tmp_path
):
    shipped = yaml.safe_load(DEPLOY_YAML.read_text())
    # Every piece of storage is Postgres: runs, the event log, schedule and sensor state.
    for storage in (pg_instance.run_storage, pg_instance.event_log_storage,
                    pg_instance.schedule_storage):
        assert type(storage).__module__.startswith("dagster_postgres."), storage
    tables = {
        row[0]
        for row in postgres.psql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'", database
        )
    }
    assert {"runs", "event_logs", "job_ticks", "instigators", "concurrency_limits"} <= tables

    # Runs wait in a queue under the shipped limits; one retraining run per model: the limit is
    # per value of the tag every model's retraining job carries.
    assert type(pg_instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    config = pg_instance.get_concurrency_config()
    queue = config.run_queue_config
    assert queue.max_concurrent_runs == shipped["concurrency"]["runs"]["max_concurrent_runs"]
    retrain = [t for t in queue.tag_concurrency_limits if t["key"] == MODEL_TAG]
    assert retrain == [{"key": MODEL_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    landing_runs = [t for t in queue.tag_concurrency_limits if t["key"] == TRIGGER_TAG]
    assert landing_runs == [{"key": TRIGGER_TAG, "value": "landing", "limit": 1}]
    from unified_assets.definitions import defs

    for name in SPECS:
        assert defs.resolve_job_def(f"retrain_{name}").tags[MODEL_TAG] == name
    assert config.pool_config.default_pool_limit == 1
    assert config.pool_config.pool_granularity.value == "op"
    # The daemon watches runs and retries crashed ones, not failed assets.
    assert pg_instance.run_monitoring_enabled
    assert pg_instance.run_retries_enabled
    assert not pg_instance.run_retries_retry_on_asset_or_op_failure
    assert {"SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR", "MONITORING", "BACKFILL"} <= set(
        pg_instance.get_required_daemon_types()
    )

    # docs/deploy.md's set-up command, run as an operator would, lands in Postgres.
    done = subprocess.run(
        [str(BIN / "dagster"), "instance", "concurrency", "set", "duckdb", "1"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ), cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    limits = postgres.psql(
        'SELECT concurrency_key, "limit", using_default_limit FROM concurrency_limits', database
    )
    assert limits == [["duckdb", "1", "f"]]
    info = pg_instance.event_log_storage.get_concurrency_info("duckdb")
    assert info.slot_count == 1 and not info.using_default_limit


def test_daily_partitions_materialized_are_recorded_in_postgres(
    home, pg_instance, postgres, database
):
    result = run(home, LANDED[0], LANDED[-1], instance=pg_instance)
    assert result.success
    assert scalar(home, "SELECT count(DISTINCT flight_date) FROM warehouse.fct_flights") == 3

    # Through the instance API: the run, and each daily partition of each daily asset.
    (record,) = pg_instance.get_run_records()
    assert record.dagster_run.run_id == result.run_id
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    for key in (["raw", "flights"], ["raw", "weather"], ["warehouse", "fct_flights"]):
        assert pg_instance.get_materialized_partitions(dg.AssetKey(key)) == set(LANDED), key
    mart = pg_instance.fetch_materializations(dg.AssetKey(["marts", "route_monthly"]), limit=1)
    assert [r.run_id for r in mart.records] == [result.run_id]

    # Straight from Postgres with psql: the same run, events and partitions.
    runs = postgres.psql("SELECT run_id, status FROM runs", database)
    assert runs == [[result.run_id, "SUCCESS"]]
    stored = postgres.psql(
        "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
        f"AND run_id = '{result.run_id}'", database)
    assert int(stored[0][0]) == len(result.get_asset_materialization_events())
    partitions = postgres.psql(
        "SELECT DISTINCT partition FROM event_logs WHERE dagster_event_type = "
        f"'ASSET_MATERIALIZATION' AND asset_key = {key_literal(['raw', 'flights'])} ORDER BY 1",
        database,
    )
    assert [p[0] for p in partitions] == LANDED
    checks = postgres.psql(
        "SELECT count(*) FROM asset_check_executions WHERE execution_status = 'SUCCEEDED' AND "
        f"check_name = 'schema' AND asset_key = {key_literal(['raw', 'flights'])}",
        database,
    )
    assert int(checks[0][0]) >= 1

    # The pool the duckdb steps took turns in is recorded too, with no slot left claimed.
    info = pg_instance.event_log_storage.get_concurrency_info("duckdb")
    assert info.slot_count == 1 and info.claimed_slots == [] and info.pending_steps == []

    # Another DAGSTER_HOME folder with the same file (another machine, say) sees the same history:
    # nothing lives in the local folder.
    elsewhere = home.parent / "other_dagster_home"
    elsewhere.mkdir()
    shutil.copy(DEPLOY_YAML, elsewhere / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(elsewhere)) as other:
        assert [r.dagster_run.run_id for r in other.get_run_records()] == [result.run_id]
        assert other.get_materialized_partitions(dg.AssetKey(["raw", "flights"])) == set(LANDED)


# The landing sensor (defs/raw/sensors.py), ticked against the Postgres instance.


def requested_days(run_requests) -> set[str]:
    """The daily partitions a tick's run requests ask for."""
    return {request.partition_key for request in run_requests if request.partition_key}


def landing_sensor():
    from unified_assets.definitions import defs

    return defs, defs.resolve_sensor_def("landing_sensor")


def test_the_landing_sensor_ticks_against_the_postgres_instance(home, pg_instance):
    defs, sensor = landing_sensor()

    def tick(cursor=None):
        with dg.build_sensor_context(
            instance=pg_instance, definitions=defs, cursor=cursor, resources=resources_for(home)
        ) as context:
            return sensor.evaluate_tick(context)

    # An empty warehouse: the dimensions first; the days once they exist.
    reference = tick()
    assert [r.job_name for r in reference.run_requests] == ["ingest_reference"]
    assert run(home, None, None, dg.AssetSelection.assets(*REFERENCE_ASSETS),
               instance=pg_instance).success
    first = tick(reference.cursor)
    assert requested_days(first.run_requests) == set(LANDED)
    assert first.cursor

    # From that cursor, nothing new landed: nothing to run.
    assert not tick(first.cursor).run_requests

    # A new day lands: the next tick asks for that day only, and moves the cursor on.
    landing.land(home, through=date(2013, 1, 4))
    second = tick(first.cursor)
    assert requested_days(second.run_requests) == {"2013-01-04"}
    assert second.cursor and second.cursor != first.cursor


def wait_for_sensor_runs(instance: dg.DagsterInstance, daemon: subprocess.Popen, log: Path):
    """The landing_sensor's stored state and first successful tick, once its runs have ended."""
    finished = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
                dg.DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            pytest.fail(f"dagster-daemon exited ({daemon.returncode}):\n{log.read_text()[-4000:]}")
        states = [s for s in instance.all_instigator_state() if s.name == "landing_sensor"]
        for state in states:
            # newest first: the reference tick, then (once the dimensions exist) the day's tick
            ticks = [t for t in instance.get_ticks(state.instigator_origin_id, state.selector_id)
                     if t.status.value == "SUCCESS" and t.run_ids]
            runs = [instance.get_run_by_id(run_id) for t in ticks for run_id in t.run_ids]
            days = [r for r in runs if r is not None and r.job_name == "ingest_daily"]
            if days and all(r is not None and r.status in finished for r in runs):
                return state, ticks[0], runs
        time.sleep(1)
    pytest.fail(f"no finished landing_sensor tick within 300 s:\n{log.read_text()[-4000:]}")


def stop_group(leader: subprocess.Popen) -> None:
    """Stop a process group we started: SIGTERM, a grace period, then SIGKILL what is left
    (a code server can outlive its daemon)."""
    os.killpg(leader.pid, signal.SIGTERM)
    try:
        leader.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            os.killpg(leader.pid, 0)  # raises once no process of the group is left
            time.sleep(0.2)
        os.killpg(leader.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    leader.wait()


def test_the_daemon_ticks_the_sensor_and_runs_its_requests_through_the_queue(
    home, pg_instance, postgres, database, tmp_path
):
    # One landed day keeps it short: the sensor asks for the reference tables and that day.
    for table in landing.DAILY_TABLES:
        for day in LANDED[1:]:
            (home / "landing" / table / f"{day}.csv").unlink()
    env = dict(os.environ)
    location = ["-m", "unified_assets.definitions"]
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        # Its own process group, so that stopping it stops its code server and run workers too.
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", *location],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        # Sensors start stopped; an operator turns this one on (the daemon picks it up).
        started = subprocess.run(
            [str(BIN / "dagster"), "sensor", "start", "landing_sensor", *location],
            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
        )
        assert started.returncode == 0, started.stderr[-3000:]
        state, tick, runs = wait_for_sensor_runs(pg_instance, daemon, log)
        heartbeats = set(pg_instance.get_daemon_heartbeats())
    finally:
        stop_group(daemon)

    # The tick, its cursor (the landed day's files) and the sensor's state are stored in Postgres.
    assert LANDED[0] in tick.cursor and state.instigator_data.cursor == tick.cursor
    stored = postgres.psql(f"SELECT status FROM job_ticks WHERE id = {tick.tick_id}", database)
    assert stored == [["SUCCESS"]]
    # Each requested run went through the queue, was launched by the daemon, and succeeded.
    failed = [(r.job_name, r.status) for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
    assert not failed, f"{failed}\n{log.read_text()[-4000:]}"
    for r in runs:
        assert r.tags.get("dagster/sensor_name") == "landing_sensor"
        assert r.tags.get(TRIGGER_TAG) == "landing"
        assert pg_instance.all_logs(r.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED)
    # One landing run at a time, in the sensor's order: the dimensions, then the day that needs
    # them (run together, the day's fct_flights step can come first and find no dim_carrier).
    records = sorted(
        (pg_instance.get_run_record_by_id(r.run_id) for r in runs), key=lambda rec: rec.start_time
    )
    assert [(rec.dagster_run.job_name, rec.dagster_run.tags.get("dagster/partition")) for rec in
            records] == [("ingest_reference", None), ("ingest_daily", LANDED[0])]
    assert records[0].end_time <= records[1].start_time
    assert pg_instance.get_materialized_partitions(dg.AssetKey(["raw", "flights"])) == {LANDED[0]}
    statuses = postgres.psql(
        "SELECT DISTINCT status FROM runs WHERE run_id IN ("
        + ", ".join(f"'{r.run_id}'" for r in runs) + ")", database)
    assert statuses == [["SUCCESS"]]
    assert {"SENSOR", "QUEUED_RUN_COORDINATOR", "MONITORING"} <= heartbeats


@pytest.mark.parametrize("ci", ["", "1"])
def test_a_missing_server_program_skips_with_the_install_hint_or_fails_under_ci(ci, monkeypatch):
    monkeypatch.setenv("UNIFIED_ASSETS_CI", ci)
    monkeypatch.setenv("PATH", "/nonexistent")
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected, match="apt-get install postgresql"):
        require_program("initdb", HINT)
