"""A short scenario end to end: a calm prefix built once, then four edited days under the
loop and the monthly calendar; the edits reach raw and the warehouse exactly as planted, the
training sets leave the broken-feed days out, and the report holds every comparator."""

import json
import os
import subprocess
import sys
from pathlib import Path

from unified_assets_tests.support.planted import every_kind_scenario
from unified_assets_tests.support.reads import query

BIN = Path(sys.executable).parent
SCENARIO = every_kind_scenario("short_every_kind", "2013-02-03", "2013-02-05")


def test_a_short_scenario_reaches_the_warehouse_and_the_report_compares_every_policy(tmp_path):
    base = tmp_path / "data"
    scenario = tmp_path / "short.yaml"
    scenario.write_text(SCENARIO)
    env = dict(os.environ, UNIFIED_ASSETS_HOME=str(base), UNIFIED_ASSETS_ROLLING_DAYS="14,7,7")
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run(
        [str(BIN / "unified-assets"), "scenarios", str(scenario), "--days", "4",
         "--bootstrap-end", "2013-01-31", "--models", "delay_classifier", "--budget", "1"],
        env=env, capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    work = base / "scenarios"
    for policy in ("loop", "calendar"):
        home = work / "short_every_kind" / policy
        ledger = json.loads((home / "replay_ledger.json").read_text())
        assert ledger["policy"] == policy and ledger["scenario"]["name"] == "short_every_kind"
        assert len(ledger["scenario"]["sha256"]) == 64
        # the edits applied on the scenario's days only, and counted their rows
        assert sorted({e["day"] for e in ledger["edits"]}) == [
            "2013-02-03", "2013-02-04", "2013-02-05"]
        assert all(e["rows"] > 0 for e in ledger["edits"])
        # they reached raw and the warehouse as planted, and only on those days
        (us_raw, us_before), = query(home, "SELECT count(*) FILTER (partition_date BETWEEN "
                                     "'2013-02-03' AND '2013-02-05'), count(*) FILTER "
                                     "(partition_date < '2013-02-03') FROM raw.flights "
                                     "WHERE carrier = 'US'")
        assert us_raw == 0 and us_before > 0
        lost, = query(home, "SELECT count(*) FILTER (arr_delay_min IS NOT NULL) FROM "
                      "warehouse.fct_flights WHERE carrier = 'B6' AND flight_date BETWEEN "
                      "'2013-02-03' AND '2013-02-05' AND NOT is_cancelled")[0]
        assert lost == 0
        ewr_late, = query(home, "SELECT avg(dep_delay_min) FROM warehouse.fct_flights WHERE "
                          "origin = 'EWR' AND sched_hour >= 14 AND flight_date = '2013-02-04'")[0]
        raw_text, = query(home, "SELECT avg(TRY_CAST(dep_delay AS INTEGER)) FROM raw.flights "
                          "WHERE origin = 'EWR' AND TRY_CAST(hour AS INTEGER) >= 14 AND "
                          "partition_date = '2013-02-04'")[0]
        assert abs(ewr_late - raw_text) < 1e-9  # the shifted delays are what curated holds
        jfk, lga = query(home, "SELECT avg(temp_f) FILTER (origin = 'JFK'), avg(temp_f) FILTER "
                         "(origin = 'LGA') FROM warehouse.fct_weather_hourly "
                         "WHERE weather_date = '2013-02-04'")[0]
        assert jfk < lga - 15  # Celsius beside Fahrenheit
    # the calendar retrains on the 1st only: none in these four days; the frozen model never
    calendar = json.loads((work / "short_every_kind" / "calendar" / "replay_ledger.json")
                          .read_text())
    assert calendar["retrainings"] == []

    out = base / "reports" / "scenarios"
    summary = (out / "summary.md").read_text()
    for column in ("first alarm (scored day)", "28 d loop", "28 d calendar", "28 d frozen",
                   "loop − calendar [95 %]", "recovery loop", "trainings calendar",
                   "deployed models trained on edited days (loop)"):
        assert column in summary
    detail = (out / "short_every_kind.md").read_text()
    assert "7 d frozen" in detail and "sha256" in detail
    # the broken JFK feed is the first alarm, named by its data check on its first day
    assert "1: data check warn_dewpoint_above_temp" in summary
    assert (out / "short_every_kind_delay_classifier.png").stat().st_size > 5_000
    # the state the scenario resumed from is kept for the next run
    assert (work / "states" / "2013-02-02" / "replay_state.json").exists()


def test_the_calendar_asks_on_the_first_of_the_month_for_the_labelled_days_before():
    from datetime import UTC, date, datetime, timedelta

    import dagster as dg

    from unified_assets.defs.monitoring.sensors import calendar_schedule
    from unified_assets.lib.models.specs import SPECS
    from unified_assets.replay import fires_on

    schedule = calendar_schedule(SPECS["delay_classifier"])
    assert fires_on(schedule.cron_schedule, date(2013, 7, 1)) == timedelta(hours=5)
    assert fires_on(schedule.cron_schedule, date(2013, 7, 2)) is None
    assert fires_on("0 6 * * 1", date(2013, 7, 1)) == timedelta(hours=6)  # a Monday
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    with dg.build_schedule_context(
            scheduled_execution_time=datetime(2013, 7, 1, 5, tzinfo=UTC)) as context:
        request = schedule(context)
    assert request.job_name in (None, "retrain_delay_classifier")
    assert request.tags["unified_assets/reason"] == "calendar"
    assert request.tags["unified_assets/as_of"] == "2013-06-29"  # June 30's labels come July 1
