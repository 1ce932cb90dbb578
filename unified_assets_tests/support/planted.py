"""Bad data planted on purpose: a leaky feature, a scenario with one edit of each kind. No
Dagster here: the unit tier uses it too."""

from __future__ import annotations

import duckdb

from unified_assets.lib.features import catalog, tables


def planted_leak_feature() -> catalog.Feature:
    """A deliberately leaky feature: the flight's own arrival delay, known only after it lands."""
    return catalog.Feature(
        name="leaky_arrival_delay",
        description="PLANTED LEAK for tests: the flight's own arrival delay, known after its "
        "cutoff.",
        dtype="int",
        source_tables=("warehouse.fct_flights",),
        owner=catalog.OWNER,
        table=tables.FLIGHT_FEATURES,
        as_of="leaky_as_of",
    )


def plant_leak(conn: duckdb.DuckDBPyConnection) -> int:
    """Add `leaky_arrival_delay` (= arr_delay_min) and `leaky_as_of` (departure + air time +
    60 minutes, long after the cutoff) to features.flight_features; return the rows given a
    leaky value."""
    table = tables.FLIGHT_FEATURES
    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS leaky_arrival_delay INTEGER")
    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS leaky_as_of TIMESTAMP")
    conn.execute(
        f"UPDATE {table} AS t SET leaky_arrival_delay = f.arr_delay_min, "
        f"leaky_as_of = t.sched_dep_utc + to_minutes(f.dep_delay_min + f.air_time_min + 60) "
        f"FROM warehouse.fct_flights AS f WHERE f.flight_date = t.flight_date "
        f"AND f.carrier = t.carrier AND f.flight = t.flight AND f.origin = t.origin "
        f"AND f.sched_dep_ts = t.sched_dep_ts"
    )
    return conn.execute(
        f"SELECT count(*) FROM {table} WHERE leaky_arrival_delay IS NOT NULL"
    ).fetchall()[0][0]


def every_kind_scenario(name: str, start: str, end: str) -> str:
    """A scenario file's text with one edit of each kind (docs/scenarios.md), `start`..`end`:
    EWR's afternoon 35 minutes later, JFK's temperature in Celsius, US gone, B6's outcomes
    missing."""
    return f"""
name: {name}
description: one edit of each kind
start: {start}
end: {end}
edits:
  - table: flights
    where: "origin = 'EWR' AND hour >= 14"
    shift_minutes: 35
  - table: weather
    where: "origin = 'JFK'"
    set: {{temp: "(temp - 32) * 5 / 9"}}
  - table: flights
    drop: "carrier = 'US'"
  - table: flights
    where: "carrier = 'B6'"
    set: {{arr_time: "NULL", arr_delay: "NULL"}}
"""
