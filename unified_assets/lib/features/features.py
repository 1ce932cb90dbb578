"""Point-in-time correct feature tables, computed in DuckDB SQL from the curated warehouse.

Every feature row has a prediction cutoff (`cutoff_utc`, naive UTC). Each feature carries, in
the registry, the column that holds the time its value became known (its `as_of`); nothing a
feature uses may be known after the cutoff, and `leakage_report` checks exactly that in SQL.

- `features.flight_features`: one row per scheduled flight, predicted `lead_minutes` before its
  scheduled departure (labels: arrival delay, late > 15 min, cancelled, diverted).
- `features.origin_daily`: one row per origin and day d, forecasting the departures at that
  origin `horizon_days` later, from what is known at the end of day d (New York time).

When a flight's outcome becomes known: `known_at_utc` = its actual arrival, converted from
local time at the destination with the destination's time zone (`dim_airport.tzone`, daylight
saving included), + `OUTCOME_LAG_MINUTES`. A flight without an arrival time, or whose
destination has no time zone, has no known outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

TZ = "America/New_York"

FLIGHT_FEATURES = "features.flight_features"
ORIGIN_DAILY = "features.origin_daily"

# The date column that windows each feature table.
WINDOW_COLUMN = {FLIGHT_FEATURES: "flight_date", ORIGIN_DAILY: "feature_date"}

_FLIGHTS = "warehouse.fct_flights"
_AIRPORT = "warehouse.dim_airport"
_WEATHER = "warehouse.fct_weather_hourly"
_PLANE = "warehouse.dim_plane"
_DATE = "warehouse.dim_date"

# Outcomes before the anchor day that the delay rates use, and the extra days of fct_flights
# read before a window so that every outcome known inside that range is seen (a flight can be
# known up to a few days after its date: departure delays of up to two days are valid).
_RATE_DAYS = (7, 28)
_HISTORY_MARGIN_DAYS = 6


# The curated tables each feature table is computed from: their DQ is the model's input DQ.
FEATURE_SOURCES = {FLIGHT_FEATURES: (_FLIGHTS, _WEATHER), ORIGIN_DAILY: (_FLIGHTS,)}

OUTCOME_LAG_MINUTES = 60
"""A landed flight's arrival delay reaches the platform this long after it lands."""


# --------------------------------------------------------------------------- time helpers (SQL)


def _ny_date(utc_sql: str) -> str:
    """The New York calendar date of a naive UTC timestamp."""
    return f"CAST(timezone('{TZ}', timezone('UTC', {utc_sql})) AS DATE)"


def _ny_midnight_utc(date_sql: str) -> str:
    """00:00 New York time of a date, as a naive UTC timestamp."""
    return f"timezone('UTC', timezone('{TZ}', CAST({date_sql} AS TIMESTAMP)))"


# Scheduled departure in UTC: the scheduled hour in UTC plus the minutes of the local schedule.
_SCHED_DEP_UTC = "time_hour_utc + to_minutes(minute(sched_dep_ts))"
# A flight's outcome: its actual arrival (local at the destination) in UTC, plus the lag.
_KNOWN_AT_UTC = (f"timezone('UTC', timezone(a.tzone, f.arr_ts)) "
                 f"+ to_minutes({OUTCOME_LAG_MINUTES})")  # fmt: skip
# A departure delay is known when the flight leaves.
_DEP_UTC = f"{_SCHED_DEP_UTC} + to_minutes(dep_delay_min)"
_LIVE_HOURS = 3


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
    ("seats", "SMALLINT"),
    ("engine", "VARCHAR"),
    ("temp_f", "DOUBLE"),
    ("dewp_f", "DOUBLE"),
    ("humid_pct", "DOUBLE"),
    ("wind_speed_mph", "DOUBLE"),
    ("wind_gust_mph", "DOUBLE"),
    ("precip_in", "DOUBLE"),
    ("pressure_mb", "DOUBLE"),
    ("visib_mi", "DOUBLE"),
    ("weather_as_of", "TIMESTAMP"),
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


def _create(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    schema = table.split(".")[0]
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    cols = ", ".join(f"{name} {sql_type}" for name, sql_type in COLUMNS[table])
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
    # A feature added to the layout is added to an existing table: its older days read NULL
    # until they are rebuilt (a model trained on them would see the gap in its FEE).
    name = table.split(".")[1]
    existing = {r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $s "
        "AND table_name = $t", {"s": schema, "t": name}).fetchall()}  # fmt: skip
    for column, sql_type in COLUMNS[table]:
        if column not in existing:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")


def _replace(
    conn: duckdb.DuckDBPyConnection, table: str, select_sql: str, params: dict, start, end
) -> int:
    """Delete the window [start, end) of a feature table, insert the select, count the window."""
    _create(conn, table)
    column = WINDOW_COLUMN[table]
    window = {"start": start, "end": end}
    conn.execute(f"DELETE FROM {table} WHERE {column} >= $start AND {column} < $end", window)
    names = ", ".join(name for name, _ in COLUMNS[table])
    conn.execute(f"INSERT INTO {table} ({names}) {select_sql}", params)
    return conn.execute(
        f"SELECT count(*) FROM {table} WHERE {column} >= $start AND {column} < $end", window
    ).fetchall()[0][0]


def _check_window(start: date, end: date) -> None:
    if end < start:
        raise ValueError(f"empty window: end {end} is before start {start}")


# --------------------------------------------------------------------------- flight features


def _rate_ctes(name: str, keys: tuple[str, ...]) -> str:
    """Daily outcome counts of one grain, then its 7- and 28-day rates per anchor day.

    The rates of anchor day d use the outcomes known on New York days d-28 .. d-1 (range join on
    the daily aggregates), so they are all known by d 00:00 New York time <= the cutoff.
    """
    key_list = ", ".join(keys)
    on = " AND ".join(f"d.{k} = a.{k}" for k in keys)
    short, long = _RATE_DAYS
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


_GRAINS = {"carrier": ("carrier",), "origin": ("origin",), "route": ("origin", "dest")}


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
                         RANGE BETWEEN INTERVAL {_LIVE_HOURS} HOUR PRECEDING AND CURRENT ROW)
        )
        WHERE is_query AND n > 0
    )"""


def _flight_features_sql() -> str:
    rates = ",".join(_rate_ctes(name, keys) for name, keys in _GRAINS.items())
    rate_joins = "\n".join(
        f"LEFT JOIN rate_{name} ON "
        + " AND ".join(f"rate_{name}.{k} = b.{k}" for k in keys)
        + f" AND rate_{name}.anchor_day = b.anchor_day"
        for name, keys in _GRAINS.items()
    )
    return f"""
    WITH base AS MATERIALIZED (
        SELECT *,
            {_ny_date("cutoff_utc")} AS anchor_day,
            count(*) OVER (PARTITION BY flight_date, origin, sched_hour) AS origin_hour_departures
        FROM (
            SELECT flight_date, carrier, flight, origin, dest, tailnum, sched_dep_ts,
                {_SCHED_DEP_UTC} AS sched_dep_utc,
                {_SCHED_DEP_UTC} - to_minutes($lead) AS cutoff_utc,
                arr_delay_min, is_cancelled, is_diverted, sched_hour, distance_mi
            FROM {_FLIGHTS}
            WHERE flight_date >= $start AND flight_date < $end
        )
    ),
    outcomes AS MATERIALIZED (
        SELECT flight_date, carrier, origin, dest, tailnum, sched_dep_ts, arr_delay_min,
            known_at_utc, {_ny_date("known_at_utc")} AS known_day,
            (arr_delay_min > 15)::INTEGER AS late
        FROM (
            SELECT f.*, {_KNOWN_AT_UTC} AS known_at_utc
            FROM {_FLIGHTS} f LEFT JOIN {_AIRPORT} a ON a.faa = f.dest
            WHERE f.flight_date >= $history_start AND f.flight_date < $end
        )
        WHERE NOT is_cancelled AND NOT is_diverted AND arr_delay_min IS NOT NULL
            AND known_at_utc IS NOT NULL
    ),
    {rates},
    weather AS (
        SELECT b.flight_date, b.carrier, b.flight, b.origin, b.sched_dep_ts,
            w.temp_f, w.dewp_f, w.humid_pct, w.wind_speed_mph, w.wind_gust_mph, w.precip_in,
            w.pressure_mb, w.visib_mi, w.known_utc AS weather_as_of
        FROM base b ASOF LEFT JOIN (
            -- The reading of hour H is taken late in the hour (METAR at about H:51): it is
            -- known, conservatively, at H + 1 hour.
            SELECT *, time_hour_utc + INTERVAL 1 HOUR AS known_utc FROM {_WEATHER}
        ) w ON w.origin = b.origin AND b.cutoff_utc >= w.known_utc
    ),
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
            {_DEP_UTC} AS dep_utc
        FROM {_FLIGHTS}
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
{_live_cte("carrier")}
    SELECT b.flight_date, b.carrier, b.flight, b.origin, b.dest, b.tailnum, b.sched_dep_ts,
        b.sched_dep_utc, $lead, b.cutoff_utc,
        b.arr_delay_min,
        CASE WHEN b.is_cancelled OR b.is_diverted THEN NULL ELSE b.arr_delay_min > 15 END,
        b.is_cancelled, b.is_diverted,
        b.sched_hour, dd.day_of_week, dd.month, dd.days_to_nearest_holiday,
        b.distance_mi,
        year(b.flight_date) - pl.year_built, pl.seats, pl.engine,
        w.temp_f, w.dewp_f, w.humid_pct, w.wind_speed_mph, w.wind_gust_mph, w.precip_in,
        w.pressure_mb, w.visib_mi, w.weather_as_of,
        rate_carrier.carrier_late_rate_7d, rate_carrier.carrier_late_rate_28d,
        rate_carrier.carrier_flights_28d,
        rate_origin.origin_late_rate_7d, rate_origin.origin_late_rate_28d,
        rate_route.route_late_rate_7d, rate_route.route_late_rate_28d,
        {_ny_midnight_utc("b.anchor_day")},
        b.origin_hour_departures,
        i.prev_arr_delay_min, i.inbound_as_of IS NOT NULL, i.inbound_as_of,
        pd.prev_dep_delay_min, pd.prev_dep_as_of,
        ol.origin_dep_delay_3h, coalesce(ol.origin_departures_3h, 0), cl.carrier_dep_delay_3h,
        greatest(ol.origin_live_as_of, cl.carrier_live_as_of)
    FROM base b
    LEFT JOIN {_DATE} dd ON dd.date = b.flight_date
    LEFT JOIN {_PLANE} pl ON pl.tailnum = b.tailnum
    LEFT JOIN weather w USING (flight_date, carrier, flight, origin, sched_dep_ts)
    LEFT JOIN inbound i USING (flight_date, carrier, flight, origin, sched_dep_ts)
    LEFT JOIN prev_departure pd USING (flight_date, carrier, flight, origin, sched_dep_ts)
    LEFT JOIN origin_live ol USING (flight_date, carrier, flight, origin, sched_dep_ts)
    LEFT JOIN carrier_live cl USING (flight_date, carrier, flight, origin, sched_dep_ts)
    {rate_joins}
    """


def build_flight_features(
    conn: duckdb.DuckDBPyConnection, start: date, end: date, lead_minutes: int
) -> int:
    """Replace the days [start, end) of features.flight_features; return the window's rows.

    Runs in the caller's transaction. Reads fct_flights from a month before `start` for the
    delay rates, fct_weather_hourly, dim_plane and dim_date.
    """
    _check_window(start, end)
    if lead_minutes < 0:
        raise ValueError(f"lead_minutes must be >= 0, got {lead_minutes}")
    # The earliest anchor day is the New York date of the earliest cutoff: up to one day (plus
    # the lead) before `start`; its rates reach 28 days further back.
    lead_days = lead_minutes // 1440 + 1
    history_start = start - timedelta(days=max(_RATE_DAYS) + lead_days + _HISTORY_MARGIN_DAYS)
    params = {"start": start, "end": end, "lead": lead_minutes, "history_start": history_start}
    return _replace(conn, FLIGHT_FEATURES, _flight_features_sql(), params, start, end)


# ------------------------------------------------------------------------------- origin daily

# Departures per origin and known day in [$history_start, $target_end): a day is known once
# fct_flights has any flight on it, and an origin with none that day had 0.
_DEPARTURES_CTES = f"""
loaded AS (
    SELECT DISTINCT flight_date AS day FROM {_FLIGHTS}
    WHERE flight_date >= $history_start AND flight_date < $target_end
),
origins AS (SELECT DISTINCT origin FROM {_FLIGHTS} WHERE origin IS NOT NULL),
counts AS (
    SELECT origin, flight_date AS day, count(*) FILTER (WHERE NOT is_cancelled) AS departures,
        count(*) FILTER (WHERE NOT is_cancelled AND dep_ts <= CAST(flight_date + 1 AS TIMESTAMP))
            AS departed_by_day_end
    FROM {_FLIGHTS}
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
SELECT g.origin, g.feature_date, g.target_date, $horizon,
    {_ny_midnight_utc("g.feature_date + 1")},
    ht.departures,
    h0.departed_by_day_end, h1.departures,
    CASE WHEN h7.day = g.feature_date THEN h7.departed_by_day_end ELSE h7.departures END,
    CASE WHEN h14.day = g.feature_date THEN h14.departed_by_day_end ELSE h14.departures END,
    r.mean_7d, r.mean_28d,
    dd.day_of_week, dd.month, dd.days_to_nearest_holiday,
    {_ny_midnight_utc("r.latest_day + 1")}
FROM grid g
LEFT JOIN recent r USING (origin, feature_date)
LEFT JOIN history ht ON ht.origin = g.origin AND ht.day = g.target_date
LEFT JOIN history h0 ON h0.origin = g.origin AND h0.day = g.feature_date
LEFT JOIN history h1 ON h1.origin = g.origin AND h1.day = g.feature_date - 1
LEFT JOIN history h7 ON h7.origin = g.origin AND h7.day = g.target_date - 7
    AND g.target_date - 7 <= g.feature_date
LEFT JOIN history h14 ON h14.origin = g.origin AND h14.day = g.target_date - 14
    AND g.target_date - 14 <= g.feature_date
LEFT JOIN {_DATE} dd ON dd.date = g.target_date
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
    _check_window(start, end)
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be >= 1, got {horizon_days}")
    params = {
        "start": start,
        "days": (end - start).days,
        "horizon": horizon_days,
        "history_start": start - timedelta(days=27),
        "target_end": end + timedelta(days=horizon_days),
    }
    rows = _replace(conn, ORIGIN_DAILY, _ORIGIN_DAILY_SQL, params, start, end)
    conn.execute(_LATE_LABELS_SQL, {"history_start": start, "target_end": end})
    return rows


# ------------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class Feature:
    """One feature column: what it is, where it comes from, and when its value was known."""

    name: str
    description: str
    dtype: str  # "float" | "int" | "category" | "bool"
    source_tables: tuple[str, ...]
    owner: str
    table: str  # FLIGHT_FEATURES or ORIGIN_DAILY
    as_of: str  # the column holding when the value was known ("cutoff_utc": known in advance)


OWNER = "ml-platform"
DTYPES = ("float", "int", "category", "bool")


def _flight(name: str, dtype: str, as_of: str, sources: tuple[str, ...], text: str) -> Feature:
    return Feature(name, text, dtype, sources, OWNER, FLIGHT_FEATURES, as_of)


def _daily(name: str, dtype: str, as_of: str, sources: tuple[str, ...], text: str) -> Feature:
    return Feature(name, text, dtype, sources, OWNER, ORIGIN_DAILY, as_of)


_F, _W, _P, _D = (_FLIGHTS,), (_WEATHER,), (_PLANE,), (_DATE,)
_WEATHER_TEXT = {
    "temp_f": "temperature (F)",
    "dewp_f": "dew point (F)",
    "humid_pct": "relative humidity (%)",
    "wind_speed_mph": "wind speed (mph)",
    "wind_gust_mph": "wind gust (mph)",
    "precip_in": "precipitation (inches)",
    "pressure_mb": "sea level pressure (millibars)",
    "visib_mi": "visibility (miles)",
}
_GRAIN_TEXT = {"carrier": "the carrier", "origin": "the origin", "route": "the route"}

_FEATURES: list[Feature] = [
    _flight("carrier", "category", "cutoff_utc", _F, "Operating carrier code (schedule)."),
    _flight("origin", "category", "cutoff_utc", _F, "Origin airport (schedule)."),
    _flight("dest", "category", "cutoff_utc", _F, "Destination airport (schedule)."),
    _flight("sched_hour", "int", "cutoff_utc", _F, "Scheduled local departure hour."),
    _flight("day_of_week", "int", "cutoff_utc", _D, "ISO day of week of the flight date."),
    _flight("month", "int", "cutoff_utc", _D, "Month of the flight date."),
    _flight("days_to_holiday", "int", "cutoff_utc", _D, "Days to the nearest US holiday."),
    _flight("distance_mi", "int", "cutoff_utc", _F, "Route distance in miles."),
    _flight("plane_age_years", "int", "cutoff_utc", _F + _P, "Flight year minus the year built."),
    _flight("seats", "int", "cutoff_utc", _P, "Seats of the plane (dim_plane)."),
    _flight("engine", "category", "cutoff_utc", _P, "Engine type of the plane (dim_plane)."),
    *(
        _flight(
            name,
            "float",
            "weather_as_of",
            _W,
            f"Origin {text}: latest reading known by the cutoff (an hour after its hour).",
        )
        for name, text in _WEATHER_TEXT.items()
    ),
    *(
        _flight(
            f"{grain}_late_rate_{days}d",
            "float",
            "rates_as_of",
            _F,
            f"Share of {_GRAIN_TEXT[grain]}'s arrived flights more than 15 min late, among "
            f"outcomes known in the {days} New York days before the cutoff's day.",
        )
        for grain in _GRAINS
        for days in _RATE_DAYS
    ),
    _flight(
        "carrier_flights_28d",
        "int",
        "rates_as_of",
        _F,
        "Outcomes the 28-day carrier late rate saw.",
    ),
    _flight(
        "origin_hour_departures",
        "int",
        "cutoff_utc",
        _F,
        "Flights scheduled out of the origin in the same local hour of the day (schedule).",
    ),
    _flight(
        "prev_arr_delay_min",
        "int",
        "inbound_as_of",
        _F,
        "Arrival delay of the plane's latest earlier flight that day known by the cutoff.",
    ),
    _flight(
        "has_prev_flight",
        "bool",
        "inbound_as_of",
        _F,
        "Whether an earlier flight of the plane that day was known by the cutoff.",
    ),
    _flight(
        "prev_dep_delay_min",
        "int",
        "prev_dep_as_of",
        _F,
        "Departure delay of the plane's latest earlier flight that day that had left by the "
        "cutoff (known when it leaves, before it lands).",
    ),
    _flight(
        "origin_dep_delay_3h",
        "float",
        "live_as_of",
        _F,
        f"Mean departure delay at the origin over the {_LIVE_HOURS} hours before the cutoff.",
    ),
    _flight(
        "origin_departures_3h",
        "int",
        "live_as_of",
        _F,
        f"Departures from the origin in the {_LIVE_HOURS} hours before the cutoff.",
    ),
    _flight(
        "carrier_dep_delay_3h",
        "float",
        "live_as_of",
        _F,
        f"Mean departure delay of the carrier (all NYC origins) over the {_LIVE_HOURS} hours "
        "before the cutoff.",
    ),
    _daily("departures_d0", "int", "history_as_of", _F,
           "Departures at the origin on day d that had left by its midnight."),
    _daily("departures_d1", "int", "history_as_of", _F, "Departures on day d-1."),
    _daily("departures_lag7", "int", "history_as_of", _F, "Departures on target-7 (NULL after d)."),
    _daily(
        "departures_lag14", "int", "history_as_of", _F, "Departures on target-14 (NULL after d)."
    ),
    _daily("departures_mean_7d", "float", "history_as_of", _F, "Mean departures, d-6 .. d."),
    _daily("departures_mean_28d", "float", "history_as_of", _F, "Mean departures, d-27 .. d."),
    _daily("target_day_of_week", "int", "cutoff_utc", _D, "ISO day of week of the target day."),
    _daily("target_month", "int", "cutoff_utc", _D, "Month of the target day."),
    _daily("target_days_to_holiday", "int", "cutoff_utc", _D, "Target day's days to a US holiday."),
]

REGISTRY: dict[str, Feature] = {f.name: f for f in _FEATURES}


def features_of(table: str, registry: dict[str, Feature] | None = None) -> list[Feature]:
    """The registered features of one feature table, in registry order."""
    if table not in COLUMNS:
        raise ValueError(f"unknown feature table {table!r}; known: {sorted(COLUMNS)}")
    return [f for f in (registry or REGISTRY).values() if f.table == table]


# ---------------------------------------------------------------------------- leakage guard


def leakage_report(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    start: date | None = None,
    end: date | None = None,
    registry: dict[str, Feature] = REGISTRY,
) -> dict[str, int]:
    """Per registered feature of `table`: rows in [start, end) whose value is not NULL and whose
    as_of column is after cutoff_utc. All zeros on a point-in-time correct table."""
    feats = features_of(table, registry)
    if not feats:
        return {}
    column = WINDOW_COLUMN[table]
    where, params = [], {}
    if start is not None:
        where.append(f"{column} >= $start")
        params["start"] = start
    if end is not None:
        where.append(f"{column} < $end")
        params["end"] = end
    counts = ", ".join(
        f"count(*) FILTER (WHERE {f.name} IS NOT NULL AND {f.as_of} > cutoff_utc)" for f in feats
    )
    sql = f"SELECT {counts} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    (row,) = conn.execute(sql, params).fetchall()
    return {f.name: int(n) for f, n in zip(feats, row, strict=True)}

