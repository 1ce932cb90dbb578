"""The curated warehouse tables, each declared once as a `Curation` (see transforms.py)."""

from __future__ import annotations

from unified_assets.lib.raw.landing import COLUMNS, NUMERIC
from unified_assets.lib.warehouse.transforms import (
    Column,
    Curation,
    Rule,
    matches,
    no_stray_fields,
    parsed,
    required,
    same_day,
    valid_utf8,
    within,
)


def _ints(*cols: str, sql_type: str = "INTEGER") -> tuple[Rule, ...]:
    return tuple(parsed(c, sql_type) for c in cols)


def _doubles(*cols: str) -> tuple[Rule, ...]:
    return tuple(parsed(c, "DOUBLE") for c in cols)


def _clock(*cols: str) -> tuple[Rule, ...]:
    return tuple(Rule(f"bad_clock({c})", f"'invalid clock time {c}: ' || {c}") for c in cols)


_SCHED_DEP = "CAST(ymd(year, month, day) AS TIMESTAMP) + to_minutes(hhmm_min(sched_dep_time))"
_SCHED_ARR = (
    "CAST(ymd(year, month, day) AS TIMESTAMP) + to_minutes(hhmm_min(sched_arr_time)"
    " + CASE WHEN hhmm_min(sched_arr_time) < hhmm_min(sched_dep_time) THEN 1440 ELSE 0 END)"
)
_UTC = "try_strptime(time_hour, '%Y-%m-%dT%H:%M:%SZ')"

FLIGHTS = Curation(
    source="raw.flights",
    target="warehouse.fct_flights",
    raw_columns=COLUMNS["flights"],
    columns=(
        Column("flight_date", "DATE", "ymd(year, month, day)"),
        Column("carrier", "VARCHAR", "carrier"),
        Column("flight", "INTEGER", "TRY_CAST(flight AS INTEGER)"),
        Column("tailnum", "VARCHAR", "tailnum"),
        Column("origin", "VARCHAR", "origin"),
        Column("dest", "VARCHAR", "dest"),
        Column("sched_dep_ts", "TIMESTAMP", _SCHED_DEP),
        Column("dep_ts", "TIMESTAMP", f"{_SCHED_DEP} + to_minutes(TRY_CAST(dep_delay AS INTEGER))"),
        Column("dep_delay_min", "INTEGER", "TRY_CAST(dep_delay AS INTEGER)"),
        Column("sched_arr_ts", "TIMESTAMP", _SCHED_ARR),
        Column("arr_ts", "TIMESTAMP", f"{_SCHED_ARR} + to_minutes(TRY_CAST(arr_delay AS INTEGER))"),
        Column("arr_delay_min", "INTEGER", "TRY_CAST(arr_delay AS INTEGER)"),
        Column("air_time_min", "INTEGER", "TRY_CAST(air_time AS INTEGER)"),
        Column("distance_mi", "INTEGER", "TRY_CAST(distance AS INTEGER)"),
        Column("sched_hour", "SMALLINT", "hhmm_min(sched_dep_time) // 60"),
        Column("time_hour_utc", "TIMESTAMP", _UTC),
        Column("is_cancelled", "BOOLEAN", "dep_time IS NULL"),
        Column("is_diverted", "BOOLEAN", "dep_time IS NOT NULL AND arr_delay IS NULL"),
        Column(
            "delays_consistent",
            "BOOLEAN",
            "(dep_time IS NULL OR mod_day(hhmm_min(dep_time) - hhmm_min(sched_dep_time)"
            " - TRY_CAST(dep_delay AS INTEGER)) = 0) AND (arr_time IS NULL OR arr_delay IS NULL"
            " OR mod_day(hhmm_min(arr_time) - hhmm_min(sched_arr_time)"
            " - TRY_CAST(arr_delay AS INTEGER)) = 0)",
        ),
    ),
    rules=(
        *required(
            "year",
            "month",
            "day",
            "carrier",
            "flight",
            "origin",
            "dest",
            "sched_dep_time",
            "sched_arr_time",
            "distance",
            "time_hour",
        ),
        *_ints(*NUMERIC["flights"]),
        Rule(f"time_hour IS NOT NULL AND {_UTC} IS NULL", "'unparseable time_hour: ' || time_hour"),
        Rule(
            "year IS NOT NULL AND month IS NOT NULL AND day IS NOT NULL AND c_flight_date IS NULL",
            "'invalid date: ' || year || '-' || month || '-' || day",
        ),
        same_day("flight_date"),
        *_clock("dep_time", "sched_dep_time", "arr_time", "sched_arr_time"),
        Rule("dep_time IS NOT NULL AND dep_delay IS NULL", "'departed without a dep_delay'"),
        within("distance_mi", 1, 10000, "distance"),
        within("air_time_min", 1, 1200, "air_time"),
        within("dep_delay_min", -1440, 2880, "dep_delay"),
        within("arr_delay_min", -1440, 2880, "arr_delay"),
        matches("carrier", "[A-Z0-9]{2}"),
        matches("origin", "[A-Z0-9]{3}"),
        matches("dest", "[A-Z0-9]{3}"),
        matches("tailnum", "[A-Z0-9]{2,7}"),
        valid_utf8(COLUMNS["flights"]),
        no_stray_fields(),
    ),
    key=("flight_date", "carrier", "flight", "origin", "sched_dep_ts"),
    partition_column="flight_date",
)

_WEATHER_NUMBERS = (
    ("temp", "temp_f", -60, 130),
    ("dewp", "dewp_f", -80, 100),
    ("humid", "humid_pct", 0, 100),
    ("wind_dir", "wind_dir_deg", 0, 360),
    ("wind_speed", "wind_speed_mph", 0, 150),
    ("wind_gust", "wind_gust_mph", 0, 200),
    ("precip", "precip_in", 0, 10),
    ("pressure", "pressure_mb", 850, 1090),
    ("visib", "visib_mi", 0, 100),
)

WEATHER = Curation(
    source="raw.weather",
    target="warehouse.fct_weather_hourly",
    raw_columns=COLUMNS["weather"],
    columns=(
        Column("origin", "VARCHAR", "origin"),
        Column("weather_date", "DATE", "ymd(year, month, day)"),
        Column("local_hour", "SMALLINT", "TRY_CAST(hour AS SMALLINT)"),
        Column("time_hour_utc", "TIMESTAMP", _UTC),
        *(
            Column(name, "DOUBLE", f"TRY_CAST({raw} AS DOUBLE)")
            for raw, name, _, _ in _WEATHER_NUMBERS
        ),
    ),
    rules=(
        *required("origin", "year", "month", "day", "hour", "time_hour"),
        *_ints("year", "month", "day", "hour"),
        *_doubles(*(raw for raw, _, _, _ in _WEATHER_NUMBERS)),
        Rule(f"time_hour IS NOT NULL AND {_UTC} IS NULL", "'unparseable time_hour: ' || time_hour"),
        Rule(
            "year IS NOT NULL AND month IS NOT NULL AND day IS NOT NULL AND c_weather_date IS NULL",
            "'invalid date: ' || year || '-' || month || '-' || day",
        ),
        same_day("weather_date"),
        within("local_hour", 0, 23, "hour"),
        *(within(name, lo, hi, raw) for raw, name, lo, hi in _WEATHER_NUMBERS),
        matches("origin", "[A-Z0-9]{3}"),
        valid_utf8(COLUMNS["weather"]),
        no_stray_fields(),
    ),
    key=("origin", "time_hour_utc"),
    partition_column="weather_date",
)

CARRIERS = Curation(
    source="raw.airlines",
    target="warehouse.dim_carrier",
    raw_columns=COLUMNS["airlines"],
    columns=(Column("carrier", "VARCHAR", "carrier"), Column("name", "VARCHAR", "name")),
    rules=(
        *required("carrier", "name"),
        matches("carrier", "[A-Z0-9]{2}"),
        valid_utf8(COLUMNS["airlines"]),
        no_stray_fields(),
    ),
    key=("carrier",),
)

AIRPORTS = Curation(
    source="raw.airports",
    target="warehouse.dim_airport",
    raw_columns=COLUMNS["airports"],
    columns=(
        Column("faa", "VARCHAR", "faa"),
        Column("name", "VARCHAR", "name"),
        Column("lat", "DOUBLE", "TRY_CAST(lat AS DOUBLE)"),
        Column("lon", "DOUBLE", "TRY_CAST(lon AS DOUBLE)"),
        Column("alt_ft", "INTEGER", "TRY_CAST(alt AS INTEGER)"),
        Column("tz_offset_h", "DOUBLE", "TRY_CAST(tz AS DOUBLE)"),
        Column("dst", "VARCHAR", "dst"),
        Column("tzone", "VARCHAR", "tzone"),
    ),
    rules=(
        *required("faa", "name", "lat", "lon"),
        *_doubles("lat", "lon", "tz"),
        parsed("alt", "INTEGER"),
        within("lat", -90, 90, "latitude"),
        within("lon", -180, 180, "longitude"),
        matches("faa", "[A-Z0-9]{3,4}"),
        valid_utf8(COLUMNS["airports"]),
        no_stray_fields(),
    ),
    key=("faa",),
)

PLANES = Curation(
    source="raw.planes",
    target="warehouse.dim_plane",
    raw_columns=COLUMNS["planes"],
    columns=(
        Column("tailnum", "VARCHAR", "tailnum"),
        Column("year_built", "SMALLINT", "TRY_CAST(year AS SMALLINT)"),
        Column("type", "VARCHAR", "type"),
        Column("manufacturer", "VARCHAR", "manufacturer"),
        Column("model", "VARCHAR", "model"),
        Column("engines", "SMALLINT", "TRY_CAST(engines AS SMALLINT)"),
        Column("seats", "SMALLINT", "TRY_CAST(seats AS SMALLINT)"),
        Column("speed_mph", "SMALLINT", "TRY_CAST(speed AS SMALLINT)"),
        Column("engine", "VARCHAR", "engine"),
    ),
    rules=(
        *required("tailnum"),
        *_ints("year", "engines", "seats", "speed", sql_type="SMALLINT"),
        within("year_built", 1900, 2030, "year"),
        within("seats", 1, 1000, "seats"),
        within("engines", 0, 8, "engines"),
        matches("tailnum", "[A-Z0-9]{2,7}"),
        valid_utf8(COLUMNS["planes"]),
        no_stray_fields(),
    ),
    key=("tailnum",),
)
