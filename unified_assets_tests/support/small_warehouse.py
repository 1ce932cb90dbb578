"""Two small warehouses for the unit tier's feature, leakage and curation tests, built without
Dagster: one by hand, row by row, where every feature value is known in advance; one of ten real
curated days of January 2013 (landed, ingested and curated through lib/). The fixtures that
build them are in unit/conftest.py."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from unified_assets.lib.core import database
from unified_assets.lib.features import leakage, tables
from unified_assets.lib.raw import ingest, landing
from unified_assets.lib.sources import SOURCES
from unified_assets.lib.warehouse import calendar, overrides, transforms

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
D10 = date(2013, 1, 10)
REAL_START, REAL_END = date(2013, 1, 1), date(2013, 1, 11)


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
    )


def add_weather(conn, origin: str, utc: datetime, temp: float) -> None:
    local = utc - timedelta(hours=5)
    conn.execute(
        "INSERT INTO warehouse.fct_weather_hourly VALUES (?, ?, ?, ?, ?, 30, 50, 180, 10, NULL, "
        "0, 1015, 10)",
        [origin, local.date(), local.hour, utc, temp],
    )


def fill_hand_built(conn) -> None:
    """A tiny warehouse: the flight under test is AA 100, tail N1, JFK 14:30 local on Jan 10.

    With a 120-minute lead its cutoff is 17:30 UTC (12:30 New York): anchor day Jan 10, so the
    7-day rates use outcomes known on New York days Jan 3 .. Jan 9, the 28-day ones Dec 13 ..
    Jan 9.
    """
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
                 "('LGA', 'America/New_York'), ('ORD', 'America/Chicago')")

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


def rows_by_flight(conn, day: date = D10) -> dict[int, dict]:
    frame = conn.execute("SELECT * FROM features.flight_features WHERE flight_date = ?", [day]).df()
    return {int(r["flight"]): r for r in frame.to_dict("records")}


def assert_as_of_before_cutoff(conn) -> None:
    for column in AS_OF:
        (late,) = conn.execute(
            f"SELECT count(*) FROM features.flight_features WHERE {column} > cutoff_utc"
        ).fetchall()[0]
        assert late == 0, column
    report = leakage.leakage_report(conn, tables.FLIGHT_FEATURES)
    assert set(report.values()) == {0}


# ------------------------------------------------------------------------------ real days


def build_curated_window(home: Path) -> Path:
    """Jan 1-10 2013 landed, ingested and curated once, with dim_date."""
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
            transforms.curate(conn, SOURCES["planes"].curation, now)
            transforms.curate(conn, SOURCES["airports"].curation, now)
            overrides.add_airport_overrides(conn)
            for spec in (SOURCES["flights"].curation, SOURCES["weather"].curation):
                transforms.curate(conn, spec, now, REAL_START, REAL_END)
    finally:
        conn.close()
    return home / "unified_assets.duckdb"


def daily_frame(conn) -> pd.DataFrame:
    return conn.execute("SELECT * FROM features.origin_daily ORDER BY origin, feature_date").df()
