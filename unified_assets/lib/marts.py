"""marts layer: the monthly on-time aggregates a BI tool reads, computed in DuckDB."""

from __future__ import annotations

from datetime import date

import duckdb

# On time = arrived no more than 15 minutes late (the US DOT definition).
_MEASURES = """
    count(*) AS flights,
    count(*) FILTER (WHERE is_cancelled) AS cancelled,
    count(*) FILTER (WHERE is_diverted) AS diverted,
    count(*) FILTER (WHERE NOT is_cancelled AND NOT is_diverted) AS arrived,
    avg(CASE WHEN arr_delay_min IS NOT NULL THEN (arr_delay_min <= 15)::INTEGER END)
        AS on_time_rate,
    avg(dep_delay_min) AS mean_dep_delay_min,
    avg(arr_delay_min) AS mean_arr_delay_min,
    quantile_cont(dep_delay_min, 0.9) AS p90_dep_delay_min,
    quantile_cont(arr_delay_min, 0.9) AS p90_arr_delay_min
"""

MARTS: dict[str, tuple[str, ...]] = {
    "marts.carrier_origin_monthly": ("carrier", "origin"),
    "marts.route_monthly": ("origin", "dest"),
}


def month_window(start: date, end: date) -> tuple[date, date]:
    """The whole months that the days [start, end) touch."""
    first = date(start.year, start.month, 1)
    last = (
        date(end.year, end.month, 1)
        if end.day == 1
        else date(end.year + (end.month == 12), end.month % 12 + 1, 1)
    )
    return first, last


def refresh(conn: duckdb.DuckDBPyConnection, table: str, start: date, end: date) -> int:
    """Recompute the months touched by [start, end) from fct_flights (caller's transaction)."""
    dims = MARTS[table]
    first, last = month_window(start, end)
    grain = ", ".join(dims)
    select = (
        f"SELECT CAST(date_trunc('month', flight_date) AS DATE) AS month, {grain}, {_MEASURES} "
        "FROM warehouse.fct_flights WHERE flight_date >= $first AND flight_date < $last "
        f"GROUP BY ALL"
    )
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {table} AS {select} LIMIT 0", {"first": first, "last": last}
    )
    conn.execute(
        f"DELETE FROM {table} WHERE month >= $first AND month < $last",
        {"first": first, "last": last},
    )
    conn.execute(f"INSERT INTO {table} BY NAME {select}", {"first": first, "last": last})
    return conn.execute(
        f"SELECT count(*) FROM {table} WHERE month >= $first AND month < $last",
        {"first": first, "last": last},
    ).fetchone()[0]
