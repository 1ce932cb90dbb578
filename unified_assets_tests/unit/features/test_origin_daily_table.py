"""The per-origin daily table (lib/features/origin_daily_table.py) on real days: its labels,
its lags, and nothing learned after the feature day."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from unified_assets.lib.features import leakage, origin_daily_table, tables
from unified_assets_tests.support.small_warehouse import REAL_END, REAL_START, daily_frame


def test_origin_daily_labels_and_lags(real):
    assert origin_daily_table.build_origin_daily(real, REAL_START, REAL_END, horizon_days=7) == 30
    df = daily_frame(real)
    departures, by_midnight = {}, {}
    for o, d, n, left in real.execute(
        "SELECT origin, flight_date, count(*) FILTER (WHERE NOT is_cancelled), count(*) FILTER "
        "(WHERE NOT is_cancelled AND dep_ts <= flight_date + INTERVAL 1 DAY) "
        "FROM warehouse.fct_flights GROUP BY ALL"
    ).fetchall():
        departures[(o, d)], by_midnight[(o, d)] = n, left
    # Some flights of a day leave after its midnight: at the end of day d they had not yet.
    assert sum(departures.values()) > sum(by_midnight.values())
    for r in df.to_dict("records"):
        d, t = r["feature_date"].date(), r["target_date"].date()
        assert t == d + timedelta(days=7)
        assert r["departures_d0"] == by_midnight[(r["origin"], d)]
        assert r["departures_lag7"] == r["departures_d0"]  # t-7 = d
        assert pd.isna(r["departures_lag14"]) == (d < date(2013, 1, 8))
        if t < REAL_END:
            assert r["departures_target"] == departures[(r["origin"], t)]
        else:
            assert pd.isna(r["departures_target"])  # not landed yet
        week = [(by_midnight if i == 0 else departures)[(r["origin"], d - timedelta(days=i))]
                for i in range(7) if d - timedelta(days=i) >= REAL_START]
        assert r["departures_mean_7d"] == pytest.approx(sum(week) / len(week))
        assert r["cutoff_utc"] == pd.Timestamp(d + timedelta(days=1)) + pd.Timedelta(hours=5)
        assert r["history_as_of"] == r["cutoff_utc"]
        assert r["target_day_of_week"] == t.isoweekday()
    assert set(leakage.leakage_report(real, tables.ORIGIN_DAILY).values()) == {0}
    assert [f.feature for f in leakage.audit(real, tables.ORIGIN_DAILY) if f.violations] == []

    # Horizon 14: t-7 is after d, so lag7 must be NULL; lag14 is day d.
    origin_daily_table.build_origin_daily(real, REAL_START, REAL_END, horizon_days=14)
    df = daily_frame(real)
    assert df["departures_lag7"].isna().all()
    assert (df["departures_lag14"] == df["departures_d0"]).all()
    # Horizon 3: lag7 is day d-4.
    origin_daily_table.build_origin_daily(real, REAL_START, REAL_END, horizon_days=3)
    row = daily_frame(real).set_index(["origin", "feature_date"]).loc[("JFK", "2013-01-10")]
    assert row["departures_lag7"] == departures[("JFK", date(2013, 1, 6))]
    assert pd.isna(row["departures_target"])  # Jan 13 is not landed


def test_origin_daily_built_day_by_day_learns_its_labels_late(real):
    """The daily runs build day d before d + 7 has happened: its label arrives with the run
    of d + 7, and the table ends equal to one built over the whole range."""
    real.execute("CREATE TABLE main.arriving AS SELECT * FROM warehouse.fct_flights")
    real.execute("DELETE FROM warehouse.fct_flights")
    for i in range((REAL_END - REAL_START).days):
        d = REAL_START + timedelta(days=i)
        real.execute("INSERT INTO warehouse.fct_flights SELECT * FROM main.arriving "
                     "WHERE flight_date = ?", [d])
        origin_daily_table.build_origin_daily(real, d, d + timedelta(days=1), horizon_days=7)
    daily = daily_frame(real)
    assert daily["departures_target"].notna().sum() > 0
    origin_daily_table.build_origin_daily(real, REAL_START, REAL_END, horizon_days=7)
    pd.testing.assert_frame_equal(daily, daily_frame(real))


def test_origin_daily_features_ignore_days_after_d(real):
    """Wiping every flight after Jan 3 changes the labels, never the features of d <= Jan 3."""
    window = (REAL_START, date(2013, 1, 4))
    origin_daily_table.build_origin_daily(real, *window, horizon_days=7)
    before = daily_frame(real)
    real.execute("DELETE FROM warehouse.fct_flights WHERE flight_date > DATE '2013-01-03'")
    origin_daily_table.build_origin_daily(real, *window, horizon_days=7)
    after = daily_frame(real)
    label = "departures_target"
    cols = [c for c in before.columns if c != label]
    pd.testing.assert_frame_equal(before[cols], after[cols])
    assert before[label].notna().all() and after[label].isna().all()
