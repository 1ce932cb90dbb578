"""The flight feature table (lib/features/flight_table.py): exact point-in-time values on
hand-built flights and weather, then real days checked against a brute-force recomputation."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from unified_assets.lib.features import catalog, flight_table, leakage, origin_daily_table, tables
from unified_assets_tests.support.small_warehouse import (
    D10,
    KEY,
    REAL_END,
    add_flight,
    assert_as_of_before_cutoff,
    rows_by_flight,
)


def test_point_in_time_values(hand):
    assert flight_table.build_flight_features(hand, D10, D10 + timedelta(days=1), 120) == 5
    rows = rows_by_flight(hand)
    t = rows[100]
    assert t["sched_dep_utc"] == pd.Timestamp("2013-01-10 19:30")
    assert t["cutoff_utc"] == pd.Timestamp("2013-01-10 17:30")
    # Weather: the last JFK reading known by 17:30 UTC: hour 16 (known at 17:00, an hour
    # after its hour), not the one at departure (19:00) and not LGA's 17:00.
    assert t["weather_as_of"] == pd.Timestamp("2013-01-10 17:00")
    assert t["temp_f"] == 31.0
    # Inbound: P1 (known 16:05 UTC) is used, P2 (known 19:40 UTC) is not.
    assert t["has_prev_flight"] == True  # noqa: E712
    assert t["prev_arr_delay_min"] == 5
    assert t["inbound_as_of"] == pd.Timestamp("2013-01-10 16:05")
    # Rates of anchor day Jan 10, as of 00:00 New York = 05:00 UTC.
    assert t["rates_as_of"] == pd.Timestamp("2013-01-10 05:00")
    assert t["carrier_late_rate_7d"] == pytest.approx(1 / 2)  # 203 late, 205 on time
    assert t["carrier_late_rate_28d"] == pytest.approx(3 / 4)  # + 206 late, 209 late
    assert t["carrier_flights_28d"] == 4
    assert t["origin_late_rate_7d"] == pytest.approx(1 / 3)  # + UA 1 on time
    assert t["route_late_rate_7d"] == pytest.approx(1 / 2)  # 203 late, UA 1 on time
    assert t["route_late_rate_28d"] == pytest.approx(1 / 2)
    # Schedule, plane, congestion, labels.
    assert t["origin_hour_departures"] == 2
    assert (t["sched_hour"], t["day_of_week"], t["month"]) == (14, 4, 1)
    assert t["days_to_holiday"] == 9  # Jan 1
    assert (t["plane_age_years"], t["seats"], t["engine"]) == (10, 150, "Turbo-fan")
    assert t["arr_delay_min"] == 99 and t["is_late_15"] == True  # noqa: E712
    # Same day, known at departure: P2 left at 15:30 UTC, 30 min late, before the 17:30 cutoff
    # (it has not landed by then, so it is no inbound *arrival*). It is the only JFK and the
    # only AA departure in (14:30, 17:30]; P1 left at 12:00, outside the 3 hours.
    assert t["prev_dep_delay_min"] == 30
    assert t["prev_dep_as_of"] == pd.Timestamp("2013-01-10 15:30")
    assert (t["origin_dep_delay_3h"], t["origin_departures_3h"]) == (30.0, 1)
    assert t["carrier_dep_delay_3h"] == 30.0
    assert t["live_as_of"] == pd.Timestamp("2013-01-10 15:30")
    # P2 (cutoff 13:00 UTC): P1 is known only at 16:05, and yesterday's flight of the same
    # tail (known 03:30 UTC) is another day's: no inbound flight.
    p2 = rows[202]
    assert p2["has_prev_flight"] == False  # noqa: E712
    assert pd.isna(p2["prev_arr_delay_min"]) and pd.isna(p2["inbound_as_of"])
    # ... but P1 had left (12:00 UTC, on time) by P2's cutoff (13:00 UTC).
    assert p2["prev_dep_delay_min"] == 0 and p2["origin_departures_3h"] == 1
    # A flight with no weather observation at or before its cutoff gets none.
    p1 = rows[201]
    assert p1["cutoff_utc"] == pd.Timestamp("2013-01-10 10:00")
    assert pd.isna(p1["temp_f"]) and pd.isna(p1["weather_as_of"])
    # Cancelled: label NULL, still a row; an unknown tail has no plane features.
    b6 = rows[7]
    assert b6["is_cancelled"] == True and pd.isna(b6["is_late_15"])  # noqa: E712
    assert pd.isna(b6["seats"])
    assert rows[300]["origin_hour_departures"] == 1
    # The reading of the cutoff's own hour (18:00) is not known until 19:00: not used; the
    # reading of hour 16, known at 17:00, is.
    add_flight(hand, D10, "AA", 400, None, "JFK", "DEN", "15:00")
    flight_table.build_flight_features(hand, D10, D10 + timedelta(days=1), 120)
    at = rows_by_flight(hand)[400]
    assert at["cutoff_utc"] == pd.Timestamp("2013-01-10 18:00")
    assert at["weather_as_of"] == pd.Timestamp("2013-01-10 17:00")
    assert at["temp_f"] == 31.0
    # A reading known exactly at the cutoff is used: hour 19, known 20:00, for a 22:00 flight.
    add_flight(hand, D10, "AA", 401, None, "JFK", "DEN", "17:00")
    flight_table.build_flight_features(hand, D10, D10 + timedelta(days=1), 120)
    exact = rows_by_flight(hand)[401]
    assert exact["cutoff_utc"] == exact["weather_as_of"] == pd.Timestamp("2013-01-10 20:00")
    assert exact["temp_f"] == 34.0
    assert_as_of_before_cutoff(hand)


def test_lead_moves_the_cutoff(hand):
    """With a 30-minute lead (cutoff 19:00 UTC) the 19:00 observation is used; with none
    (cutoff 19:30) still not P2, whose outcome is known only at 19:40."""
    flight_table.build_flight_features(hand, D10, D10 + timedelta(days=1), 30)
    t = rows_by_flight(hand)[100]
    assert t["cutoff_utc"] == pd.Timestamp("2013-01-10 19:00")
    assert t["weather_as_of"] == pd.Timestamp("2013-01-10 19:00")
    assert (t["prev_arr_delay_min"], t["inbound_as_of"]) == (5, pd.Timestamp("2013-01-10 16:05"))
    flight_table.build_flight_features(hand, D10, D10 + timedelta(days=1), 0)
    assert rows_by_flight(hand)[100]["prev_arr_delay_min"] == 5
    assert_as_of_before_cutoff(hand)


def test_a_long_taxi_in_and_a_hold_keep_the_delay_out_until_the_plane_lands(hand):
    """P2 leaves at 15:30 UTC with 90 minutes in the air: wheels-on by 17:00, yet it holds and
    taxis to land at the gate at 18:40 UTC. Air time said its outcome was known at 18:00; it is
    known an hour after the real landing, 19:40. AA 100's cutoff at 19:15 (15-minute lead)
    must not see it, at 19:45 (no lead, a later departure) it must."""
    add_flight(hand, D10, "AA", 500, "N1", "JFK", "DEN", "14:45")  # same tail, after P2
    flight_table.build_flight_features(hand, D10, D10 + timedelta(days=1), 15)
    rows = rows_by_flight(hand)
    assert rows[100]["cutoff_utc"] == pd.Timestamp("2013-01-10 19:15")
    assert rows[100]["prev_arr_delay_min"] == 5  # P1's, not P2's 40
    assert rows[500]["cutoff_utc"] == pd.Timestamp("2013-01-10 19:30")
    assert rows[500]["prev_arr_delay_min"] == 5
    flight_table.build_flight_features(hand, D10, D10 + timedelta(days=1), 0)
    late = rows_by_flight(hand)[500]
    assert late["cutoff_utc"] == pd.Timestamp("2013-01-10 19:45")
    assert (late["prev_arr_delay_min"], late["inbound_as_of"]) == (
        40, pd.Timestamp("2013-01-10 19:40"))
    assert_as_of_before_cutoff(hand)
    audit = leakage.audit(hand, tables.FLIGHT_FEATURES)
    assert {f.feature: f.violations for f in audit if f.violations} == {}


def test_an_arrival_across_the_daylight_saving_change_is_put_in_utc_by_its_zone(hand):
    """Sunday 2013-03-10, 2 a.m.: clocks go forward in New York and Chicago. N9 leaves JFK at
    01:00 EST (06:00 UTC) and lands at ORD at 03:30 local, already CDT (UTC-5): 08:30 UTC, known
    09:30. Read as CST it would be 09:30, known 10:30. Its next flight leaves JFK at 11:30 EDT
    (15:30 UTC); with a 5-hour-50 lead its cutoff is 09:40 UTC: known only with DST right."""
    day = date(2013, 3, 10)
    row = ("INSERT INTO warehouse.fct_flights VALUES (?, 'UA', ?, 'N9', 'JFK', ?, ?, ?, 0, ?, ?, "
           "?, 100, 700, ?, ?, false, false, true)")
    hand.execute(row, [day, 1, "ORD", datetime(2013, 3, 10, 1), datetime(2013, 3, 10, 1),
                       datetime(2013, 3, 10, 3, 30), datetime(2013, 3, 10, 3, 30), 21, 1,
                       datetime(2013, 3, 10, 6)])
    hand.execute(row, [day, 2, "BOS", datetime(2013, 3, 10, 11, 30), datetime(2013, 3, 10, 11, 30),
                       datetime(2013, 3, 10, 13), datetime(2013, 3, 10, 13), 0, 11,
                       datetime(2013, 3, 10, 15)])
    flight_table.build_flight_features(hand, day, day + timedelta(days=1), 5 * 60 + 50)
    second = rows_by_flight(hand, day)[2]
    assert second["cutoff_utc"] == pd.Timestamp("2013-03-10 09:40")
    assert (second["prev_arr_delay_min"], second["inbound_as_of"]) == (
        21, pd.Timestamp("2013-03-10 09:30"))
    flight_table.build_flight_features(hand, day, day + timedelta(days=1), 6 * 60 + 5)  # 09:25
    assert pd.isna(rows_by_flight(hand, day)[2]["prev_arr_delay_min"])
    assert_as_of_before_cutoff(hand)


def test_rates_of_an_early_cutoff_use_the_previous_day(hand):
    """A 15-hour lead puts the cutoff at 04:30 UTC = 23:30 New York on Jan 9: anchor day Jan 9,
    so flight 203 (known on NY day Jan 9) is out and 210 (Dec 12 = d-28) is in."""
    flight_table.build_flight_features(hand, D10, D10 + timedelta(days=1), 15 * 60)
    t = rows_by_flight(hand)[100]
    assert t["rates_as_of"] == pd.Timestamp("2013-01-09 05:00")
    assert t["carrier_late_rate_7d"] == pytest.approx(1 / 2)  # 205 on time, 206 late
    assert t["carrier_late_rate_28d"] == pytest.approx(2 / 4)  # + 209 late, 210 on time
    assert t["carrier_flights_28d"] == 4
    assert_as_of_before_cutoff(hand)


def test_rebuilding_a_window_replaces_it(hand):
    end = D10 + timedelta(days=1)
    assert flight_table.build_flight_features(hand, D10, end, 120) == 5
    assert flight_table.build_flight_features(hand, date(2013, 1, 2), end, 120) == 12
    assert flight_table.build_flight_features(hand, D10, end, 120) == 5
    (dupes,) = hand.execute(
        f"SELECT count(*) FROM (SELECT {', '.join(KEY)} FROM features.flight_features "
        "GROUP BY ALL HAVING count(*) > 1)"
    ).fetchall()[0]
    assert dupes == 0
    assert hand.execute("SELECT count(*) FROM features.flight_features").fetchall() == [(12,)]
    assert origin_daily_table.build_origin_daily(hand, D10, end) == 2  # JFK and LGA
    assert origin_daily_table.build_origin_daily(hand, date(2013, 1, 9), end) == 4
    assert origin_daily_table.build_origin_daily(hand, D10, end) == 2
    assert hand.execute("SELECT count(*) FROM features.origin_daily").fetchall() == [(4,)]


def test_rates_and_inbound_match_a_brute_force_recomputation(real):
    """Independent pandas recomputation, row by row, for a sample of real flights."""
    flight_table.build_flight_features(real, date(2013, 1, 8), REAL_END, 120)
    flights = real.execute("SELECT * FROM warehouse.fct_flights").df()
    zones = dict(real.execute("SELECT faa, tzone FROM warehouse.dim_airport").fetchall())
    landed = pd.Series(pd.NaT, index=flights.index, dtype="datetime64[us]")
    for dest, group in flights.groupby("dest"):
        if zones.get(dest):
            local = group["arr_ts"].dt.tz_localize(zones[dest])
            landed[group.index] = local.dt.tz_convert("UTC").dt.tz_localize(None)
    flights["known_at"] = landed + pd.Timedelta(minutes=tables.OUTCOME_LAG_MINUTES)
    arrived = flights[
        ~flights["is_cancelled"] & ~flights["is_diverted"] & flights["arr_delay_min"].notna()
    ].dropna(subset=["known_at"])
    known_day = arrived["known_at"].dt.tz_localize("UTC").dt.tz_convert(tables.TZ).dt.date
    rows = real.execute(
        "SELECT * FROM features.flight_features USING SAMPLE 150 ROWS (reservoir, 7)"
    ).df()
    for r in rows.to_dict("records"):
        anchor = r["cutoff_utc"].tz_localize("UTC").tz_convert(tables.TZ).date()
        week = (known_day >= anchor - timedelta(days=7)) & (known_day < anchor)
        same = arrived["carrier"] == r["carrier"]
        seen = arrived[same & week]
        expected = (seen["arr_delay_min"] > 15).mean() if len(seen) else None
        if expected is None:
            assert pd.isna(r["carrier_late_rate_7d"])
        else:
            assert r["carrier_late_rate_7d"] == pytest.approx(expected)
        route = arrived[
            (arrived["origin"] == r["origin"]) & (arrived["dest"] == r["dest"])
            & (known_day >= anchor - timedelta(days=28)) & (known_day < anchor)
        ]
        if len(route):
            assert r["route_late_rate_28d"] == pytest.approx((route["arr_delay_min"] > 15).mean())
        else:
            assert pd.isna(r["route_late_rate_28d"])
        prev = arrived[
            (arrived["tailnum"] == r["tailnum"])
            & (arrived["flight_date"] == r["flight_date"])
            & (arrived["sched_dep_ts"] < r["sched_dep_ts"])
            & (arrived["known_at"] <= r["cutoff_utc"])
        ]
        assert bool(r["has_prev_flight"]) == (len(prev) > 0)
        if len(prev):
            last = prev.sort_values(["known_at", "sched_dep_ts"]).iloc[-1]
            assert r["prev_arr_delay_min"] == last["arr_delay_min"]


def test_flight_features_ignore_what_is_known_after_the_cutoff(real):
    """Every cutoff of Jan 9 is before Jan 10 05:00 UTC: changing the outcomes of Jan 10 and
    deleting the weather after then must leave every feature of Jan 9 unchanged."""
    day = (date(2013, 1, 9), date(2013, 1, 10))
    flight_table.build_flight_features(real, *day, 120)
    cols = ", ".join(f.name for f in catalog.features_of(tables.FLIGHT_FEATURES))
    query = f"SELECT {', '.join(KEY)}, {cols} FROM features.flight_features ORDER BY ALL"
    before = real.execute(query).df()
    assert real.execute("SELECT max(cutoff_utc) FROM features.flight_features").fetchall()[0][
        0
    ] < datetime(2013, 1, 10, 5)
    real.execute(
        "UPDATE warehouse.fct_flights SET arr_delay_min = arr_delay_min + 500, "
        "air_time_min = 1 WHERE flight_date >= DATE '2013-01-10'"
    )
    real.execute(
        "DELETE FROM warehouse.fct_weather_hourly "
        "WHERE time_hour_utc > TIMESTAMP '2013-01-10 05:00'"
    )
    flight_table.build_flight_features(real, *day, 120)
    pd.testing.assert_frame_equal(before, real.execute(query).df())
