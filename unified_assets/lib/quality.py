"""Data quality: pandera validation outcomes and the DQ score of KPIS.md.

DQ = (α·C + β·A + γ·V) / (α + β + γ) per table and partition, computed in DuckDB:
- C, completeness: share of required cells present;
- A, accuracy: share of rows that agree with the rest of the world (cross-field consistency,
  referential integrity, physically plausible values);
- V, validity: share of rows that pass the table's schema. For curated warehouse tables that is
  the share of the partition's input rows that were not quarantined (from the ingest audit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import pandas as pd
import pandera.pandas as pa

from unified_assets.lib.config import QualitySettings
from unified_assets.lib.schemas import SCHEMAS, WARN_PREFIX
from unified_assets.lib.transforms import AUDIT, install_macros

DQ_TABLE = "monitoring.data_quality"
SAMPLE_ROWS = 20


# ---------------------------------------------------------------- pandera outcomes


@dataclass(frozen=True)
class Validation:
    """What pandera found in one table's rows, split into blocking and warning failures."""

    rows: int
    blocking: pd.DataFrame
    warnings: pd.DataFrame

    @staticmethod
    def summary(failures: pd.DataFrame) -> dict[str, int]:
        """Failure count per (column, check)."""
        if failures.empty:
            return {}
        keys = (
            failures["column"].fillna("<table>").astype(str) + ": " + failures["check"].astype(str)
        )
        return {k: int(v) for k, v in keys.value_counts().items()}

    @staticmethod
    def sample(failures: pd.DataFrame, n: int = SAMPLE_ROWS) -> list[dict]:
        cols = ["column", "check", "failure_case", "index"]
        head = failures[[c for c in cols if c in failures]].head(n)
        return [
            {k: (None if pd.isna(v) else str(v)) for k, v in row.items()}
            for row in head.to_dict("records")
        ]


def validate(table: str, frame: pd.DataFrame) -> Validation:
    """Validate all of `frame` against the table's schema, collecting every failure."""
    schema: pa.DataFrameSchema = SCHEMAS[table]
    try:
        schema.validate(frame, lazy=True)
        failures = pd.DataFrame(columns=["column", "check", "failure_case", "index"])
    except pa.errors.SchemaErrors as exc:
        failures = exc.failure_cases
    is_warning = failures["check"].astype(str).str.startswith(WARN_PREFIX)
    return Validation(len(frame), failures[~is_warning], failures[is_warning])


# ---------------------------------------------------------------- DQ score


def _as_number(predicates: tuple[str, ...]) -> str:
    if not predicates:
        return "1.0"
    joined = " AND ".join(f"coalesce(({p}), TRUE)" for p in predicates)
    return f"avg(CASE WHEN {joined} THEN 1.0 ELSE 0.0 END)"


@dataclass(frozen=True)
class QualitySpec:
    """How C, A and V are measured for one table (SQL over its rows)."""

    partition_column: str | None = None
    required: tuple[str, ...] = ()  # SQL: TRUE when the required cell is present
    accuracy: tuple[str, ...] = ()  # SQL per row: TRUE when consistent with the world
    validity: tuple[str, ...] = ()  # SQL per row: TRUE when it passes the schema
    audited: bool = False  # V from the ingest audit instead of `validity`
    notes: dict[str, str] = field(default_factory=dict)


def _present(*cols: str) -> tuple[str, ...]:
    return tuple(f"{c} IS NOT NULL" for c in cols)


def _parses(*cols: str) -> tuple[str, ...]:
    return tuple(f"{c} IS NULL OR TRY_CAST({c} AS DOUBLE) IS NOT NULL" for c in cols)


_IN_DIM = "{col} IS NULL OR {col} IN (SELECT {key} FROM warehouse.{dim})"

SPECS: dict[str, QualitySpec] = {
    "raw.flights": QualitySpec(
        partition_column="partition_date",
        required=_present(
            "year", "month", "day", "sched_dep_time", "sched_arr_time", "carrier", "flight",
            "origin", "dest", "distance", "time_hour", "hour", "minute",
        ),
        accuracy=("ymd(year, month, day) = partition_date",),
        validity=_parses(
            "year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time",
            "sched_arr_time", "arr_delay", "flight", "air_time", "distance", "hour", "minute",
        ),
    ),
    "raw.weather": QualitySpec(
        partition_column="partition_date",
        required=_present(
            "origin", "year", "month", "day", "hour", "time_hour", "temp", "dewp", "humid",
            "wind_dir", "wind_speed", "precip", "pressure", "visib",
        ),
        accuracy=("ymd(year, month, day) = partition_date",),
        validity=_parses(
            "year", "month", "day", "hour", "temp", "dewp", "humid", "wind_dir", "wind_speed",
            "wind_gust", "precip", "pressure", "visib",
        ),
    ),
    "raw.planes": QualitySpec(
        required=_present("tailnum", "year", "type", "manufacturer", "model", "engines", "seats"),
        validity=_parses("year", "engines", "seats", "speed"),
    ),
    "raw.airports": QualitySpec(
        required=_present("faa", "name", "lat", "lon", "alt", "tz", "dst", "tzone"),
        validity=_parses("lat", "lon", "alt", "tz"),
    ),
    "raw.airlines": QualitySpec(required=_present("carrier", "name")),
    "warehouse.fct_flights": QualitySpec(
        partition_column="flight_date",
        required=(
            *_present("flight_date", "carrier", "flight", "origin", "dest", "sched_dep_ts",
                      "tailnum"),
            "is_cancelled OR dep_delay_min IS NOT NULL",
            "is_cancelled OR is_diverted OR arr_delay_min IS NOT NULL",
            "is_cancelled OR is_diverted OR air_time_min IS NOT NULL",
        ),
        accuracy=(
            _IN_DIM.format(col="carrier", key="carrier", dim="dim_carrier"),
            _IN_DIM.format(col="origin", key="faa", dim="dim_airport"),
            _IN_DIM.format(col="dest", key="faa", dim="dim_airport"),
            _IN_DIM.format(col="tailnum", key="tailnum", dim="dim_plane"),
            "delays_consistent",
            "air_time_min IS NULL OR distance_mi * 60.0 / air_time_min BETWEEN 60 AND 700",
        ),
        audited=True,
    ),
    "warehouse.fct_weather_hourly": QualitySpec(
        partition_column="weather_date",
        required=_present(
            "temp_f", "dewp_f", "humid_pct", "wind_dir_deg", "wind_speed_mph", "precip_in",
            "pressure_mb", "visib_mi",
        ),
        accuracy=(
            "dewp_f <= temp_f + 0.5",
            "wind_gust_mph IS NULL OR wind_gust_mph >= wind_speed_mph",
            _IN_DIM.format(col="origin", key="faa", dim="dim_airport"),
        ),
        audited=True,
    ),
    "warehouse.dim_carrier": QualitySpec(required=_present("carrier", "name"), audited=True),
    "warehouse.dim_airport": QualitySpec(
        required=_present("faa", "name", "lat", "lon", "alt_ft", "tz_offset_h", "tzone"),
        accuracy=("tzone IS NULL OR tz_offset_h IS NULL OR tz_offset_h BETWEEN -12 AND 14",),
        audited=True,
    ),
    "warehouse.dim_plane": QualitySpec(
        required=_present("tailnum", "year_built", "type", "manufacturer", "model", "engines",
                          "seats"),
        accuracy=("year_built IS NULL OR year_built <= 2014",),
        audited=True,
    ),
    "warehouse.dim_date": QualitySpec(required=_present("date", "day_of_week")),
    "marts.carrier_origin_monthly": QualitySpec(
        partition_column="month",
        required=_present("on_time_rate", "mean_arr_delay_min", "p90_arr_delay_min"),
        accuracy=("arrived + cancelled + diverted = flights",),
        validity=("flights > 0", "on_time_rate IS NULL OR on_time_rate BETWEEN 0 AND 1"),
    ),
    "marts.route_monthly": QualitySpec(
        partition_column="month",
        required=_present("on_time_rate", "mean_arr_delay_min", "p90_arr_delay_min"),
        accuracy=("arrived + cancelled + diverted = flights",),
        validity=("flights > 0", "on_time_rate IS NULL OR on_time_rate BETWEEN 0 AND 1"),
    ),
}  # fmt: skip


def dq_score(c: float | None, a: float | None, v: float | None, s: QualitySettings) -> float | None:
    """The weighted DQ score; None when there is nothing to score."""
    if c is None or a is None or v is None:
        return None
    return (s.alpha * c + s.beta * a + s.gamma * v) / (s.alpha + s.beta + s.gamma)


def measure(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    start: date | None = None,
    end: date | None = None,
    settings: QualitySettings | None = None,
) -> pd.DataFrame:
    """C, A, V and DQ per partition of `table` over [start, end) (one row when unpartitioned)."""
    settings = settings or QualitySettings()
    spec = SPECS[table]
    install_macros(conn)
    part = spec.partition_column or "NULL::DATE"
    where, params = "TRUE", {}
    if spec.partition_column and start is not None:
        where = f"{spec.partition_column} >= $start AND {spec.partition_column} < $end"
        params = {"start": start, "end": end}
    n_req = len(spec.required)
    completeness = (
        "1.0"
        if not n_req
        else (
            "("
            + " + ".join(f"sum(CASE WHEN {r} THEN 1 ELSE 0 END)" for r in spec.required)
            + f") / (count(*) * {n_req}.0)"
        )
    )
    measured = (
        f"SELECT CAST({part} AS DATE) AS partition_date, count(*) AS rows, "
        f"{completeness} AS completeness, {_as_number(spec.accuracy)} AS accuracy, "
        f"{_as_number(spec.validity)} AS validity FROM {table} WHERE {where} GROUP BY 1"
    )
    if spec.audited:
        audit_where = (
            "partition_date IS NULL"
            if spec.partition_column is None
            else (
                "partition_date >= $start AND partition_date < $end"
                if start is not None
                else "TRUE"
            )
        )
        target = table
        measured = (
            f"WITH m AS ({measured}), a AS (SELECT partition_date, rows_in, quarantined "
            f"FROM {AUDIT} WHERE table_name = '{target}' AND {audit_where}) "
            "SELECT a.partition_date, coalesce(m.rows, 0) AS rows, "
            "CASE WHEN a.rows_in > 0 THEN coalesce(m.completeness, 0) END AS completeness, "
            "CASE WHEN a.rows_in > 0 THEN coalesce(m.accuracy, 0) END AS accuracy, "
            "CASE WHEN a.rows_in > 0 THEN 1.0 - a.quarantined / a.rows_in END AS validity "
            "FROM a LEFT JOIN m ON m.partition_date IS NOT DISTINCT FROM a.partition_date"
        )
    frame = conn.execute(f"{measured} ORDER BY 1", params).df()
    frame.insert(0, "table_name", table)
    frame["dq"] = [
        dq_score(*(None if pd.isna(x) else float(x) for x in row), settings)
        for row in frame[["completeness", "accuracy", "validity"]].itertuples(index=False)
    ]
    return frame


def record(
    conn: duckdb.DuckDBPyConnection,
    scores: pd.DataFrame,
    table: str,
    start: date | None,
    end: date | None,
    now: datetime,
    settings: QualitySettings,
) -> None:
    """Replace the window's rows of monitoring.data_quality (caller's transaction)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS monitoring")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {DQ_TABLE} (table_name VARCHAR, partition_date DATE, "
        "rows BIGINT, completeness DOUBLE, accuracy DOUBLE, validity DOUBLE, dq DOUBLE, "
        "alpha DOUBLE, beta DOUBLE, gamma DOUBLE, measured_at TIMESTAMP)"
    )
    spec = SPECS[table]
    if spec.partition_column is None or start is None:
        conn.execute(f"DELETE FROM {DQ_TABLE} WHERE table_name = ?", [table])
    else:
        conn.execute(
            f"DELETE FROM {DQ_TABLE} WHERE table_name = ? AND partition_date >= ? "
            "AND partition_date < ?",
            [table, start, end],
        )
    rows = scores.assign(
        alpha=settings.alpha, beta=settings.beta, gamma=settings.gamma, measured_at=now
    )
    conn.register("_dq_rows", rows)
    try:
        conn.execute(
            f"INSERT INTO {DQ_TABLE} SELECT table_name, partition_date, rows, completeness, "
            "accuracy, validity, dq, alpha, beta, gamma, measured_at FROM _dq_rows"
        )
    finally:
        conn.unregister("_dq_rows")


def overall(scores: pd.DataFrame) -> dict[str, float | None]:
    """Row-weighted C, A, V and DQ over the partitions of one measurement."""
    scored = scores.dropna(subset=["dq"])
    weights = scored["rows"].clip(lower=1)
    if scored.empty:
        return {"completeness": None, "accuracy": None, "validity": None, "dq": None}
    return {
        k: float((scored[k] * weights).sum() / weights.sum())
        for k in ("completeness", "accuracy", "validity", "dq")
    }
