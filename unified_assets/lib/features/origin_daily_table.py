"""features.origin_daily: one row per origin and day d, forecasting the departures at that origin
`horizon_days` later, from what is known at the end of day d (New York time), in DuckDB SQL."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from unified_assets.lib.features.tables import (
    DATE,
    FLIGHTS,
    ORIGIN_DAILY,
    check_window,
    ny_midnight_utc,
    replace,
)

# Departures per origin and known day in [$history_start, $target_end): a day is known once
# fct_flights has any flight on it, and an origin with none that day had 0.
_DEPARTURES_CTES = f"""
loaded AS (
    SELECT DISTINCT flight_date AS day FROM {FLIGHTS}
    WHERE flight_date >= $history_start AND flight_date < $target_end
),
origins AS (SELECT DISTINCT origin FROM {FLIGHTS} WHERE origin IS NOT NULL),
counts AS (
    SELECT origin, flight_date AS day, count(*) FILTER (WHERE NOT is_cancelled) AS departures,
        count(*) FILTER (WHERE NOT is_cancelled AND dep_ts <= CAST(flight_date + 1 AS TIMESTAMP))
            AS departed_by_day_end
    FROM {FLIGHTS}
    WHERE flight_date >= $history_start AND flight_date < $target_end
    GROUP BY ALL
),
history AS (
    SELECT o.origin, l.day, coalesce(c.departures, 0) AS departures,
        coalesce(c.departed_by_day_end, 0) AS departed_by_day_end
    FROM origins o CROSS JOIN loaded l
    LEFT JOIN counts c ON c.origin = o.origin AND c.day = l.day
)"""

# What the end of day d knows of a day's departures: all of them for earlier days (a departure
# delay stays under a day), those that had left by midnight for d itself.
_KNOWN_DEPARTURES = (
    "CASE WHEN h.day = g.feature_date THEN h.departed_by_day_end ELSE h.departures END"
)

_ORIGIN_DAILY_SQL = f"""
WITH {_DEPARTURES_CTES},
grid AS (
    SELECT o.origin, CAST($start AS DATE) + i AS feature_date,
        CAST($start AS DATE) + i + $horizon AS target_date
    FROM origins o CROSS JOIN (SELECT CAST(range AS INTEGER) AS i FROM range($days)) t
),
recent AS (
    SELECT g.origin, g.feature_date,
        avg({_KNOWN_DEPARTURES}) FILTER (WHERE h.day >= g.feature_date - 6) AS mean_7d,
        avg({_KNOWN_DEPARTURES}) AS mean_28d,
        max(h.day) AS latest_day
    FROM grid g JOIN history h
        ON h.origin = g.origin AND h.day BETWEEN g.feature_date - 27 AND g.feature_date
    GROUP BY ALL
)
SELECT g.origin, g.feature_date, g.target_date, $horizon AS horizon_days,
    {ny_midnight_utc("g.feature_date + 1")} AS cutoff_utc,
    ht.departures AS departures_target,
    h0.departed_by_day_end AS departures_d0, h1.departures AS departures_d1,
    CASE WHEN h7.day = g.feature_date THEN h7.departed_by_day_end ELSE h7.departures END
        AS departures_lag7,
    CASE WHEN h14.day = g.feature_date THEN h14.departed_by_day_end ELSE h14.departures END
        AS departures_lag14,
    r.mean_7d AS departures_mean_7d, r.mean_28d AS departures_mean_28d,
    dd.day_of_week AS target_day_of_week, dd.month AS target_month,
    dd.days_to_nearest_holiday AS target_days_to_holiday,
    {ny_midnight_utc("r.latest_day + 1")} AS history_as_of
FROM grid g
LEFT JOIN recent r USING (origin, feature_date)
LEFT JOIN history ht ON ht.origin = g.origin AND ht.day = g.target_date
LEFT JOIN history h0 ON h0.origin = g.origin AND h0.day = g.feature_date
LEFT JOIN history h1 ON h1.origin = g.origin AND h1.day = g.feature_date - 1
LEFT JOIN history h7 ON h7.origin = g.origin AND h7.day = g.target_date - 7
    AND g.target_date - 7 <= g.feature_date
LEFT JOIN history h14 ON h14.origin = g.origin AND h14.day = g.target_date - 14
    AND g.target_date - 14 <= g.feature_date
LEFT JOIN {DATE} dd ON dd.date = g.target_date
"""


# The label of an earlier row whose target day is among the days just built ($history_start to
# $target_end here): a daily run builds day d before d + horizon has happened, and learns its
# label when the run of d + horizon builds that day.
_LATE_LABELS_SQL = f"""
UPDATE {ORIGIN_DAILY} AS o SET departures_target = k.departures
FROM (WITH {_DEPARTURES_CTES} SELECT * FROM history) k
WHERE o.origin = k.origin AND o.target_date = k.day AND o.feature_date < $history_start
"""


def build_origin_daily(
    conn: duckdb.DuckDBPyConnection, start: date, end: date, horizon_days: int = 7
) -> int:
    """Replace the days [start, end) of features.origin_daily; return the window's rows.

    A row (origin, d) forecasts the departures (flights not cancelled) at the origin on
    d + horizon_days from what is known at the end of day d, New York time. A day counts as
    known once fct_flights has any flight on it: an origin with none that day had 0 departures;
    a day with no data at all gives NULL. Earlier rows whose target day is in [start, end) get
    their label now, so building day by day ends with the same table as building a range.
    Runs in the caller's transaction.
    """
    check_window(start, end)
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be >= 1, got {horizon_days}")
    params = {
        "start": start,
        "days": (end - start).days,
        "horizon": horizon_days,
        "history_start": start - timedelta(days=27),
        "target_end": end + timedelta(days=horizon_days),
    }
    rows = replace(conn, ORIGIN_DAILY, _ORIGIN_DAILY_SQL, params, start, end)
    conn.execute(_LATE_LABELS_SQL, {"history_start": start, "target_end": end})
    return rows
