"""marts layer: the monthly on-time aggregates a BI tool reads, computed in DuckDB."""

from __future__ import annotations

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


def refresh(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    """Rebuild the mart from all of fct_flights (in the caller's transaction).

    A whole year aggregates in well under a second in DuckDB, so a mart is always rebuilt
    whole: it can never disagree with the facts, whatever days were re-curated.
    """
    grain = ", ".join(MARTS[table])
    conn.execute(
        f"CREATE OR REPLACE TABLE {table} AS "
        f"SELECT CAST(date_trunc('month', flight_date) AS DATE) AS month, {grain}, {_MEASURES} "
        f"FROM warehouse.fct_flights GROUP BY ALL ORDER BY ALL"
    )
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
