"""The feature tables' names, layouts and windows, the warehouse tables they read, and the SQL
fragments the feature builders (and the online store's export) share.

Every feature row has a prediction cutoff (`cutoff_utc`, naive UTC). Each feature carries, in
the registry (`catalog.py`), the column that holds the time its value became known (its
`as_of`); nothing a feature uses may be known after the cutoff, and `leakage.leakage_report`
checks exactly that in SQL.

- `features.flight_features` (`flight_table.py`): one row per scheduled flight, predicted
  `lead_minutes` before its scheduled departure (labels: arrival delay, late > 15 min,
  cancelled, diverted).
- `features.origin_daily` (`origin_daily_table.py`): one row per origin and day d, forecasting
  the departures at that origin `horizon_days` later, from what is known at the end of day d
  (New York time).

When a flight's outcome becomes known: `known_at_utc` = its actual arrival, converted from
local time at the destination with the destination's time zone (`dim_airport.tzone`, daylight
saving included), + `OUTCOME_LAG_MINUTES`. A flight without an arrival time, or whose
destination has no time zone, has no known outcome.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the prediction service reads the names here, and does not load DuckDB
    import duckdb

TZ = "America/New_York"

FLIGHT_FEATURES = "features.flight_features"
ORIGIN_DAILY = "features.origin_daily"

# The date column that windows each feature table.
WINDOW_COLUMN = {FLIGHT_FEATURES: "flight_date", ORIGIN_DAILY: "feature_date"}

FLIGHTS = "warehouse.fct_flights"
AIRPORT = "warehouse.dim_airport"
WEATHER = "warehouse.fct_weather_hourly"
PLANE = "warehouse.dim_plane"
DATE = "warehouse.dim_date"

# The days of outcomes before the anchor day that the delay rates use.
RATE_DAYS = (7, 28)

# The curated tables each feature table is computed from: their DQ is the model's input DQ.
FEATURE_SOURCES = {FLIGHT_FEATURES: (FLIGHTS, WEATHER), ORIGIN_DAILY: (FLIGHTS,)}
# What a builder reads beyond its features' own source tables (catalog.source_tables): the
# destinations' time zones, which say when an outcome became known.
BUILDER_READS = {FLIGHT_FEATURES: (AIRPORT,), ORIGIN_DAILY: ()}

OUTCOME_LAG_MINUTES = 60
"""A landed flight's arrival delay reaches the platform this long after it lands."""


# --------------------------------------------------------------------------- time helpers (SQL)


def ny_date(utc_sql: str) -> str:
    """The New York calendar date of a naive UTC timestamp."""
    return f"CAST(timezone('{TZ}', timezone('UTC', {utc_sql})) AS DATE)"


def ny_midnight_utc(date_sql: str) -> str:
    """00:00 New York time of a date, as a naive UTC timestamp."""
    return f"timezone('UTC', timezone('{TZ}', CAST({date_sql} AS TIMESTAMP)))"


# Scheduled departure in UTC: the scheduled hour in UTC plus the minutes of the local schedule.
SCHED_DEP_UTC = "time_hour_utc + to_minutes(minute(sched_dep_ts))"
# A flight's outcome: its actual arrival (local at the destination) in UTC, plus the lag.
KNOWN_AT_UTC = (f"timezone('UTC', timezone(a.tzone, f.arr_ts)) "
                f"+ to_minutes({OUTCOME_LAG_MINUTES})")
# A departure delay is known when the flight leaves.
DEP_UTC = f"{SCHED_DEP_UTC} + to_minutes(dep_delay_min)"
LIVE_HOURS = 3


# ------------------------------------------------------------------------------ table layouts

_FLIGHT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("flight_date", "DATE"),
    ("carrier", "VARCHAR"),
    ("flight", "INTEGER"),
    ("origin", "VARCHAR"),
    ("dest", "VARCHAR"),
    ("tailnum", "VARCHAR"),
    ("sched_dep_ts", "TIMESTAMP"),
    ("sched_dep_utc", "TIMESTAMP"),
    ("lead_minutes", "INTEGER"),
    ("cutoff_utc", "TIMESTAMP"),
    ("arr_delay_min", "INTEGER"),
    ("is_late_15", "BOOLEAN"),
    ("is_cancelled", "BOOLEAN"),
    ("is_diverted", "BOOLEAN"),
    ("sched_hour", "SMALLINT"),
    ("day_of_week", "SMALLINT"),
    ("month", "SMALLINT"),
    ("days_to_holiday", "SMALLINT"),
    ("distance_mi", "INTEGER"),
    ("plane_age_years", "SMALLINT"),
    ("carrier_late_rate_7d", "DOUBLE"),
    ("carrier_late_rate_28d", "DOUBLE"),
    ("carrier_flights_28d", "INTEGER"),
    ("origin_late_rate_7d", "DOUBLE"),
    ("origin_late_rate_28d", "DOUBLE"),
    ("route_late_rate_7d", "DOUBLE"),
    ("route_late_rate_28d", "DOUBLE"),
    ("rates_as_of", "TIMESTAMP"),
    ("origin_hour_departures", "INTEGER"),
    ("prev_arr_delay_min", "INTEGER"),
    ("has_prev_flight", "BOOLEAN"),
    ("inbound_as_of", "TIMESTAMP"),
    ("prev_dep_delay_min", "INTEGER"),
    ("prev_dep_as_of", "TIMESTAMP"),
    ("origin_dep_delay_3h", "DOUBLE"),
    ("origin_departures_3h", "INTEGER"),
    ("carrier_dep_delay_3h", "DOUBLE"),
    ("live_as_of", "TIMESTAMP"),
)

_ORIGIN_DAILY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("origin", "VARCHAR"),
    ("feature_date", "DATE"),
    ("target_date", "DATE"),
    ("horizon_days", "INTEGER"),
    ("cutoff_utc", "TIMESTAMP"),
    ("departures_target", "INTEGER"),
    ("departures_d0", "INTEGER"),
    ("departures_d1", "INTEGER"),
    ("departures_lag7", "INTEGER"),
    ("departures_lag14", "INTEGER"),
    ("departures_mean_7d", "DOUBLE"),
    ("departures_mean_28d", "DOUBLE"),
    ("target_day_of_week", "SMALLINT"),
    ("target_month", "SMALLINT"),
    ("target_days_to_holiday", "SMALLINT"),
    ("history_as_of", "TIMESTAMP"),
)

COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    FLIGHT_FEATURES: _FLIGHT_COLUMNS,
    ORIGIN_DAILY: _ORIGIN_DAILY_COLUMNS,
}


def _create(conn: duckdb.DuckDBPyConnection, table: str,
            layout: tuple[tuple[str, str], ...]) -> None:
    schema = table.split(".")[0]
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    cols = ", ".join(f"{name} {sql_type}" for name, sql_type in layout)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
    # A feature added to the layout is added to an existing table: its older days read NULL
    # until they are rebuilt (a model trained on them would see the gap in its FEE).
    name = table.split(".")[1]
    existing = {r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $s "
        "AND table_name = $t", {"s": schema, "t": name}).fetchall()}
    for column, sql_type in layout:
        if column not in existing:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")


def replace(
    conn: duckdb.DuckDBPyConnection, table: str, select_sql: str, params: dict, start, end,
    layout: tuple[tuple[str, str], ...] | None = None,
) -> int:
    """Delete the window [start, end) of a feature table, insert the select, count the window.
    The select's columns are matched to the table's by name (`layout`: the table's columns,
    its base layout by default)."""
    layout = layout or COLUMNS[table]
    _create(conn, table, layout)
    column = WINDOW_COLUMN[table]
    window = {"start": start, "end": end}
    conn.execute(f"DELETE FROM {table} WHERE {column} >= $start AND {column} < $end", window)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE _feature_rows AS {select_sql}", params)
    selected = [d[0] for d in conn.execute("SELECT * FROM _feature_rows LIMIT 0").description]
    missing = [name for name, _ in layout if name not in selected]
    extra = [name for name in selected if name not in dict(layout)]
    if missing or extra:
        raise ValueError(f"{table}: the feature SQL does not give the table's columns: "
                         f"missing {missing}, not in the table {extra}")
    conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _feature_rows")
    conn.execute("DROP TABLE _feature_rows")
    return conn.execute(
        f"SELECT count(*) FROM {table} WHERE {column} >= $start AND {column} < $end", window
    ).fetchall()[0][0]


def check_window(start: date, end: date) -> None:
    if end < start:
        raise ValueError(f"empty window: end {end} is before start {start}")


# ------------------------------------------------------------------------------- delay rates


def rate_ctes(name: str, keys: tuple[str, ...]) -> str:
    """Daily outcome counts of one grain, then its 7- and 28-day rates per anchor day.

    The rates of anchor day d use the outcomes known on New York days d-28 .. d-1 (range join on
    the daily aggregates), so they are all known by d 00:00 New York time <= the cutoff.
    """
    key_list = ", ".join(keys)
    on = " AND ".join(f"d.{k} = a.{k}" for k in keys)
    short, long = RATE_DAYS
    return f"""
    daily_{name} AS (
        SELECT {key_list}, known_day, count(*) AS n, sum(late) AS n_late
        FROM outcomes GROUP BY ALL
    ),
    rate_{name} AS (
        SELECT {", ".join(f"a.{k}" for k in keys)}, a.anchor_day,
            sum(d.n_late) FILTER (WHERE d.known_day >= a.anchor_day - {short})::DOUBLE
                / sum(d.n) FILTER (WHERE d.known_day >= a.anchor_day - {short})
                AS {name}_late_rate_{short}d,
            sum(d.n_late)::DOUBLE / sum(d.n) AS {name}_late_rate_{long}d,
            coalesce(sum(d.n), 0) AS {name}_flights_{long}d
        FROM (SELECT DISTINCT {key_list}, anchor_day FROM base) a
        LEFT JOIN daily_{name} d ON {on}
            AND d.known_day BETWEEN a.anchor_day - {long} AND a.anchor_day - 1
        GROUP BY ALL
    )"""


GRAINS = {"carrier": ("carrier",), "origin": ("origin",), "route": ("origin", "dest")}
