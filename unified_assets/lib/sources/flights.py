"""flights: every flight that left a New York airport, one landing file a day."""

import pandera.pandas as pa

from unified_assets.lib.quality.checks import (
    in_range,
    outcomes_reported,
    sql_in_dimension,
    sql_present,
    warn,
    warn_present,
)
from unified_assets.lib.sources.spec import SourceSpec
from unified_assets.lib.warehouse.transforms import (
    Column,
    Rule,
    iso_utc,
    matches,
    parsed_each,
    parsed_utc,
    same_day,
    valid_date,
    within,
)

_COLUMNS = (
    "year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time",
    "sched_arr_time", "arr_delay", "carrier", "flight", "tailnum", "origin", "dest",
    "air_time", "distance", "hour", "minute", "time_hour",
)
_NUMERIC = (
    "year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time",
    "sched_arr_time", "arr_delay", "flight", "air_time", "distance", "hour", "minute",
)
_SCHED_DEP = "CAST(ymd(year, month, day) AS TIMESTAMP) + to_minutes(hhmm_min(sched_dep_time))"
_SCHED_ARR = (
    "CAST(ymd(year, month, day) AS TIMESTAMP) + to_minutes(hhmm_min(sched_arr_time)"
    " + CASE WHEN hhmm_min(sched_arr_time) < hhmm_min(sched_dep_time) THEN 1440 ELSE 0 END)"
)
_CODE = {2: pa.Check.str_matches(r"^[A-Z0-9]{2}$"), 3: pa.Check.str_matches(r"^[A-Z0-9]{3}$")}


def _clock(*cols: str) -> tuple[Rule, ...]:
    return tuple(Rule(f"bad_clock({c})", f"'invalid clock time {c}: ' || {c}") for c in cols)


SOURCE = SourceSpec(
    name="flights",
    description="Every flight that left a New York airport, one landing file per day, as it "
    "arrived.",
    columns=_COLUMNS,
    numeric=_NUMERIC,
    daily=True,
    embedded="flights.csv.zip",
    table="warehouse.fct_flights",
    table_description="One row per scheduled flight: typed times, delays, cancelled and "
    "diverted flags.",
    partition_column="flight_date",
    typed=(
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
        Column("time_hour_utc", "TIMESTAMP", iso_utc("time_hour")),
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
    key=("flight_date", "carrier", "flight", "origin", "sched_dep_ts"),
    required=("year", "month", "day", "carrier", "flight", "origin", "dest", "sched_dep_time",
              "sched_arr_time", "distance", "time_hour"),
    rules=(
        *parsed_each("INTEGER", *_NUMERIC),
        parsed_utc("time_hour"),
        valid_date("flight_date"),
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
    ),
    not_null=("dest", "sched_arr_ts", "distance_mi", "sched_hour", "time_hour_utc",
              "is_cancelled", "is_diverted", "delays_consistent"),
    checks={
        "carrier": [_CODE[2]],
        "flight": [pa.Check.ge(0)],
        "tailnum": [warn_present("tailnum_present")],
        "origin": [_CODE[3]],
        "dest": [_CODE[3]],
        "dep_delay_min": [in_range(-1440, 2880)],
        "arr_delay_min": [in_range(-1440, 2880)],
        "air_time_min": [in_range(1, 1200)],
        "distance_mi": [in_range(1, 10000)],
        "sched_hour": [in_range(0, 24)],
        "delays_consistent": [warn(lambda s: s.fillna(False), "delays_consistent")],
    },
    table_checks=(
        pa.Check(lambda df: ~(df.is_cancelled & df.arr_ts.notna()), name="cancelled_never_arrive"),
        pa.Check(lambda df: ~(df.is_cancelled & df.is_diverted), name="cancelled_xor_diverted"),
        warn(outcomes_reported, "outcomes_missing"),
    ),
    expected=("year", "month", "day", "sched_dep_time", "sched_arr_time", "carrier", "flight",
              "origin", "dest", "distance", "time_hour", "hour", "minute"),
    raw_accuracy=("ymd(year, month, day) = partition_date",),
    dq_required=(
        *sql_present("flight_date", "carrier", "flight", "origin", "dest", "sched_dep_ts",
                     "tailnum"),
        "is_cancelled OR dep_delay_min IS NOT NULL",
        "is_cancelled OR is_diverted OR arr_delay_min IS NOT NULL",
        "is_cancelled OR is_diverted OR air_time_min IS NOT NULL",
    ),
    dq_accuracy=(
        sql_in_dimension("carrier", "carrier", "dim_carrier"),
        sql_in_dimension("origin", "faa", "dim_airport"),
        sql_in_dimension("dest", "faa", "dim_airport"),
        sql_in_dimension("tailnum", "tailnum", "dim_plane"),
        "delays_consistent",
        "air_time_min IS NULL OR distance_mi * 60.0 / air_time_min BETWEEN 60 AND 700",
    ),
    needs=("warehouse.dim_carrier", "warehouse.dim_airport", "warehouse.dim_plane"),
    extra_checks=("referential_integrity",),
)
