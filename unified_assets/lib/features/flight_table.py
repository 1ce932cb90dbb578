"""features.flight_features: one row per scheduled flight, predicted `lead_minutes` before its
scheduled departure (labels: arrival delay, late > 15 min, cancelled, diverted), in DuckDB SQL."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from unified_assets.lib.features import catalog
from unified_assets.lib.features.tables import (
    AIRPORT,
    DATE,
    DEP_UTC,
    FLIGHT_FEATURES,
    FLIGHTS,
    GRAINS,
    KNOWN_AT_UTC,
    LIVE_HOURS,
    PLANE,
    RATE_DAYS,
    SCHED_DEP_UTC,
    check_window,
    ny_date,
    ny_midnight_utc,
    rate_ctes,
    replace,
)

# The extra days of fct_flights read before a window so that every outcome known inside the
# rates' range is seen (a flight can be known up to a few days after its date: departure delays
# of up to two days are valid).
_HISTORY_MARGIN_DAYS = 6
LEAD_MINUTES = 120  # a flight is predicted this long before its scheduled departure, by default


def _live_cte(grain: str) -> str:
    """Departure delays of the grain (origin or carrier) over the hours before each cutoff.

    One sorted pass instead of a range join: departures and cutoffs in one stream per grain, a
    RANGE window over the last hours, kept at the cutoff rows. A departure at the very cutoff
    counts (it is known then); nothing after it does.
    """
    keys = "flight_date, carrier, flight, origin, sched_dep_ts"
    return f"""
    {grain}_live AS (
        SELECT {keys}, s / nullif(n, 0) AS {grain}_dep_delay_3h, n AS {grain}_departures_3h,
            last_dep AS {grain}_live_as_of
        FROM (
            SELECT *, sum(v) OVER w AS s, count(v) OVER w AS n, max(dep) OVER w AS last_dep
            FROM (
                SELECT {grain} AS g, dep_utc AS ts, dep_delay_min AS v, dep_utc AS dep,
                    FALSE AS is_query, NULL::DATE AS flight_date, NULL AS carrier,
                    NULL::INTEGER AS flight, NULL AS origin, NULL::TIMESTAMP AS sched_dep_ts
                FROM departures
                UNION ALL
                SELECT {grain}, cutoff_utc, NULL, NULL, TRUE, {keys} FROM base
            )
            WINDOW w AS (PARTITION BY g ORDER BY ts
                         RANGE BETWEEN INTERVAL {LIVE_HOURS} HOUR PRECEDING AND CURRENT ROW)
        )
        WHERE is_query AND n > 0
    )"""


def _asof_cte(i: int, group: list) -> str:
    declared = group[0].asof
    on = " AND ".join(f"w.k{j} = b.{col}" for j, (col, _) in enumerate(declared.on))
    values = ", ".join(f"w.{f.name}" for f in group)
    return f"""    asof_{i} AS (
        SELECT b.flight_date, b.carrier, b.flight, b.origin, b.sched_dep_ts, {values},
            w.known AS {declared.as_of_column}
        FROM base b ASOF LEFT JOIN ({catalog.as_of_rows_sql(group)}) w
            ON {on} AND b.cutoff_utc >= w.known
    ),"""


def _flight_features_sql() -> str:
    """The table's SQL; each lookup feature of the registry adds its rows (a CTE), a join on
    its key and its column, from its one declaration (catalog.Lookup)."""
    lookups = catalog.lookups_of(FLIGHT_FEATURES)
    lookup_ctes = "".join(f",\n    lookup_{f.name} AS ({f.lookup.rows_sql()})" for f in lookups)
    lookup_joins = "".join(
        f"\n    LEFT JOIN lookup_{f.name} ON "
        + " AND ".join(f"lookup_{f.name}.k{i} = b.{col}" for i, (col, _) in enumerate(f.lookup.on))
        for f in lookups)
    lookup_columns = "".join(
        f",\n        CASE WHEN lookup_{f.name}.k0 IS NULL THEN {f.lookup.default} "
        f"ELSE lookup_{f.name}.v END AS {f.name}" for f in lookups)
    # Each as-of group (catalog.AsOf): the latest row of its table known by the cutoff, one
    # ASOF join per group, its features and its as-of column.
    groups = catalog.as_of_groups(FLIGHT_FEATURES)
    asof_ctes = "".join(_asof_cte(i, group) for i, group in enumerate(groups))
    asof_columns = "".join(
        "        " + ", ".join([*(f"asof_{i}.{f.name}" for f in group),
                               f"asof_{i}.{group[0].asof.as_of_column}"]) + ",\n"
        for i, group in enumerate(groups))
    asof_joins = "".join(
        f"    LEFT JOIN asof_{i} USING (flight_date, carrier, flight, origin, sched_dep_ts)\n"
        for i in range(len(groups)))
    rates = ",".join(rate_ctes(name, keys) for name, keys in GRAINS.items())
    rate_joins = "\n".join(
        f"LEFT JOIN rate_{name} ON "
        + " AND ".join(f"rate_{name}.{k} = b.{k}" for k in keys)
        + f" AND rate_{name}.anchor_day = b.anchor_day"
        for name, keys in GRAINS.items()
    )
    return f"""
    WITH base AS MATERIALIZED (
        SELECT *,
            {ny_date("cutoff_utc")} AS anchor_day,
            count(*) OVER (PARTITION BY flight_date, origin, sched_hour) AS origin_hour_departures
        FROM (
            SELECT flight_date, carrier, flight, origin, dest, tailnum, sched_dep_ts,
                {SCHED_DEP_UTC} AS sched_dep_utc,
                {SCHED_DEP_UTC} - to_minutes($lead) AS cutoff_utc,
                arr_delay_min, is_cancelled, is_diverted, sched_hour, distance_mi
            FROM {FLIGHTS}
            WHERE flight_date >= $start AND flight_date < $end
        )
    ),
    outcomes AS MATERIALIZED (
        SELECT flight_date, carrier, origin, dest, tailnum, sched_dep_ts, arr_delay_min,
            known_at_utc, {ny_date("known_at_utc")} AS known_day,
            (arr_delay_min > 15)::INTEGER AS late
        FROM (
            SELECT f.*, {KNOWN_AT_UTC} AS known_at_utc
            FROM {FLIGHTS} f LEFT JOIN {AIRPORT} a ON a.faa = f.dest
            WHERE f.flight_date >= $history_start AND f.flight_date < $end
        )
        WHERE NOT is_cancelled AND NOT is_diverted AND arr_delay_min IS NOT NULL
            AND known_at_utc IS NOT NULL
    ),
    {rates},
{asof_ctes}
    inbound AS (
        SELECT b.flight_date, b.carrier, b.flight, b.origin, b.sched_dep_ts,
            p.arr_delay_min AS prev_arr_delay_min, p.known_at_utc AS inbound_as_of
        FROM base b JOIN outcomes p
            ON p.tailnum = b.tailnum AND p.flight_date = b.flight_date
            AND p.sched_dep_ts < b.sched_dep_ts AND p.known_at_utc <= b.cutoff_utc
        QUALIFY row_number() OVER (
            PARTITION BY b.flight_date, b.carrier, b.flight, b.origin, b.sched_dep_ts
            ORDER BY p.known_at_utc DESC, p.sched_dep_ts DESC
        ) = 1
    ),
    departures AS MATERIALIZED (
        SELECT flight_date, carrier, origin, tailnum, sched_dep_ts, dep_delay_min,
            {DEP_UTC} AS dep_utc
        FROM {FLIGHTS}
        WHERE flight_date >= $start - 1 AND flight_date < $end AND dep_delay_min IS NOT NULL
    ),
    prev_departure AS (
        SELECT b.flight_date, b.carrier, b.flight, b.origin, b.sched_dep_ts,
            p.dep_delay_min AS prev_dep_delay_min, p.dep_utc AS prev_dep_as_of
        FROM base b JOIN departures p
            ON p.tailnum = b.tailnum AND p.flight_date = b.flight_date
            AND p.sched_dep_ts < b.sched_dep_ts AND p.dep_utc <= b.cutoff_utc
        QUALIFY row_number() OVER (
            PARTITION BY b.flight_date, b.carrier, b.flight, b.origin, b.sched_dep_ts
            ORDER BY p.dep_utc DESC, p.sched_dep_ts DESC
        ) = 1
    ),
{_live_cte("origin")},
{_live_cte("carrier")}{lookup_ctes}
    SELECT b.flight_date, b.carrier, b.flight, b.origin, b.dest, b.tailnum, b.sched_dep_ts,
        b.sched_dep_utc, $lead AS lead_minutes, b.cutoff_utc,
        b.arr_delay_min,
        CASE WHEN b.is_cancelled OR b.is_diverted THEN NULL ELSE b.arr_delay_min > 15 END
            AS is_late_15,
        b.is_cancelled, b.is_diverted,
        b.sched_hour, dd.day_of_week, dd.month, dd.days_to_nearest_holiday AS days_to_holiday,
        b.distance_mi,
        year(b.flight_date) - pl.year_built AS plane_age_years,
{asof_columns}        rate_carrier.carrier_late_rate_7d, rate_carrier.carrier_late_rate_28d,
        rate_carrier.carrier_flights_28d,
        rate_origin.origin_late_rate_7d, rate_origin.origin_late_rate_28d,
        rate_route.route_late_rate_7d, rate_route.route_late_rate_28d,
        {ny_midnight_utc("b.anchor_day")} AS rates_as_of,
        b.origin_hour_departures,
        i.prev_arr_delay_min, i.inbound_as_of IS NOT NULL AS has_prev_flight, i.inbound_as_of,
        pd.prev_dep_delay_min, pd.prev_dep_as_of,
        ol.origin_dep_delay_3h, coalesce(ol.origin_departures_3h, 0) AS origin_departures_3h,
        cl.carrier_dep_delay_3h,
        greatest(ol.origin_live_as_of, cl.carrier_live_as_of) AS live_as_of{lookup_columns}
    FROM base b
    LEFT JOIN {DATE} dd ON dd.date = b.flight_date
    LEFT JOIN {PLANE} pl ON pl.tailnum = b.tailnum
{asof_joins}    LEFT JOIN inbound i USING (flight_date, carrier, flight, origin, sched_dep_ts)
    LEFT JOIN prev_departure pd USING (flight_date, carrier, flight, origin, sched_dep_ts)
    LEFT JOIN origin_live ol USING (flight_date, carrier, flight, origin, sched_dep_ts)
    LEFT JOIN carrier_live cl USING (flight_date, carrier, flight, origin, sched_dep_ts)
    {rate_joins}{lookup_joins}
    """


def build_flight_features(
    conn: duckdb.DuckDBPyConnection, start: date, end: date, lead_minutes: int
) -> int:
    """Replace the days [start, end) of features.flight_features; return the window's rows.

    Runs in the caller's transaction. Reads fct_flights from a month before `start` for the
    delay rates, fct_weather_hourly, dim_plane and dim_date.
    """
    check_window(start, end)
    if lead_minutes < 0:
        raise ValueError(f"lead_minutes must be >= 0, got {lead_minutes}")
    # The earliest anchor day is the New York date of the earliest cutoff: up to one day (plus
    # the lead) before `start`; its rates reach 28 days further back.
    lead_days = lead_minutes // 1440 + 1
    history_start = start - timedelta(days=max(RATE_DAYS) + lead_days + _HISTORY_MARGIN_DAYS)
    params = {"start": start, "end": end, "lead": lead_minutes, "history_start": history_start}
    return replace(conn, FLIGHT_FEATURES, _flight_features_sql(), params, start, end,
                   catalog.layout(FLIGHT_FEATURES))
