"""Data quality: pandera validation outcomes and the DQ score (docs/kpis.md).

DQ = (α·C + β·A + γ·V) / (α + β + γ) per table and partition, computed in DuckDB:
- C, completeness: share of required cells present;
- A, accuracy: share of rows that agree with the rest of the world (cross-field consistency,
  referential integrity, physically plausible values);
- V, validity: share of rows that pass the table's schema. For curated warehouse tables that is
  the share of the partition's input rows that were not quarantined (from the ingest audit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import pandas as pd
import pandera.pandas as pa

from unified_assets.lib.core.config import QualitySettings
from unified_assets.lib.core.database import table_exists
from unified_assets.lib.quality.checks import WARN_PREFIX, QualitySpec, sql_present
from unified_assets.lib.quality.schemas import SCHEMAS
from unified_assets.lib.sources import SOURCES
from unified_assets.lib.warehouse.calendar import weather_hours
from unified_assets.lib.warehouse.transforms import AUDIT, install_macros

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


# The source tables' DQ rules are declared with them (lib/sources/); the others are here.
SPECS: dict[str, QualitySpec] = {
    **{s.raw_table: s.raw_quality() for s in SOURCES.values()},
    **{s.table: s.quality() for s in SOURCES.values()},
    "warehouse.dim_date": QualitySpec(required=sql_present("date", "day_of_week")),
    "marts.carrier_origin_monthly": QualitySpec(
        partition_column="month",
        required=sql_present("on_time_rate", "mean_arr_delay_min", "p90_arr_delay_min"),
        accuracy=("arrived + cancelled + diverted = flights",),
        validity=("flights > 0", "on_time_rate IS NULL OR on_time_rate BETWEEN 0 AND 1"),
    ),
    "marts.route_monthly": QualitySpec(
        partition_column="month",
        required=sql_present("on_time_rate", "mean_arr_delay_min", "p90_arr_delay_min"),
        accuracy=("arrived + cancelled + diverted = flights",),
        validity=("flights > 0", "on_time_rate IS NULL OR on_time_rate BETWEEN 0 AND 1"),
    ),
}


def dq_score(c: float | None, a: float | None, v: float | None, s: QualitySettings) -> float | None:
    """The weighted DQ score over the parts that could be measured; None when none could.

    A partition whose every row was quarantined has no curated cells to measure C and A on:
    its score is its validity (0), not an average that hides the loss.
    """
    parts = [(w, x) for w, x in ((s.alpha, c), (s.beta, a), (s.gamma, v)) if x is not None]
    weight = sum(w for w, _ in parts)
    if not parts or weight == 0:
        return None
    return sum(w * x for w, x in parts) / weight


def _known_tables(conn: duckdb.DuckDBPyConnection, predicates: tuple[str, ...]) -> tuple[str, ...]:
    """Drop the predicates that read a dimension not built yet (scored once it exists)."""
    kept = []
    for predicate in predicates:
        tables = re.findall(r"\b(warehouse\.dim_\w+)", predicate)
        if all(table_exists(conn, t) for t in tables):
            kept.append(predicate)
    return tuple(kept)


def measure(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    start: date | None = None,
    end: date | None = None,
    settings: QualitySettings | None = None,
) -> pd.DataFrame:
    """C, A, V and DQ per partition of `table` over [start, end) (one row when unpartitioned).

    `rows_in` is what the partition received (for curated tables: before quarantine and
    deduplication); it weighs the partition in `overall`.
    """
    settings = settings or QualitySettings()
    spec = SPECS[table]
    install_macros(conn)
    part = spec.partition_column or "NULL::DATE"
    where, params = "TRUE", {}
    if spec.partition_column and start is not None:
        where = f"{spec.partition_column} >= $start AND {spec.partition_column} < $end"
        params = {"start": start, "end": end}
    completeness = "1.0"
    if spec.required:
        present = " + ".join(f"sum(CASE WHEN {r} THEN 1 ELSE 0 END)" for r in spec.required)
        completeness = f"({present}) / (count(*) * {len(spec.required)}.0)"
    accuracy = _as_number(_known_tables(conn, spec.accuracy))
    measured = (
        f"SELECT CAST({part} AS DATE) AS partition_date, count(*) AS rows, "
        f"count(*) AS rows_in, {completeness} AS completeness, {accuracy} AS accuracy, "
        f"{_as_number(spec.validity)} AS validity FROM {table} WHERE {where} GROUP BY 1"
    )
    if spec.audited:
        audit_where = "partition_date IS NULL"
        if spec.partition_column is not None:
            audit_where = (
                "TRUE" if start is None else "partition_date >= $start AND partition_date < $end"
            )
        # V counts quarantined rows and duplicates as failing the schema (types, ranges, keys).
        measured = (
            f"WITH m AS ({measured}), a AS (SELECT partition_date, rows_in, quarantined, "
            f"duplicates FROM {AUDIT} WHERE table_name = '{table}' AND {audit_where}) "
            "SELECT a.partition_date, coalesce(m.rows, 0) AS rows, a.rows_in, "
            "m.completeness, m.accuracy, CASE WHEN a.rows_in > 0 THEN "
            "1.0 - (a.quarantined + a.duplicates) / a.rows_in END AS validity "
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
    """C, A, V and DQ over the partitions of one measurement, weighted by rows received."""
    result: dict[str, float | None] = {}
    for k in ("completeness", "accuracy", "validity", "dq"):
        known = scores.dropna(subset=[k])
        weights = known["rows_in"].astype(float)
        result[k] = float((known[k] * weights).sum() / weights.sum()) if weights.sum() else None
    return result


# ---------------------------------------------------------------- the real data's flaws

_REFERENCES = (
    ("carrier", "dim_carrier", "carrier"),
    ("origin", "dim_airport", "faa"),
    ("dest", "dim_airport", "faa"),
    ("tailnum", "dim_plane", "tailnum"),
)


def unknown_references(conn: duckdb.DuckDBPyConnection, start: date, end: date) -> dict:
    """Per flight column: rows and values that its dimension does not know, in [start, end)."""
    unknown = {}
    for col, dim, key in _REFERENCES:
        rows = conn.execute(
            f"SELECT {col}, count(*) FROM warehouse.fct_flights WHERE flight_date >= $s "
            f"AND flight_date < $e AND {col} IS NOT NULL AND {col} NOT IN "
            f"(SELECT {key} FROM warehouse.{dim}) GROUP BY 1 ORDER BY 2 DESC, 1",
            {"s": start, "e": end},
        ).fetchall()
        unknown[col] = {
            "rows": sum(n for _, n in rows),
            "values": len(rows),
            "top": {v: n for v, n in rows[:10]},
        }
    return unknown


def missing_weather_hours(
    conn: duckdb.DuckDBPyConnection, start: date, end: date
) -> list[tuple[str, date, int]]:
    """(origin, day, hours missing) against the day's real length in New York (23 or 25 hours
    on daylight-saving days), worst first."""
    conn.register("_expected", weather_hours(start, end))
    try:
        return conn.execute(
            "WITH origins AS (SELECT DISTINCT origin FROM warehouse.fct_weather_hourly), "
            "have AS (SELECT origin, weather_date AS d, count(*) AS n "
            "FROM warehouse.fct_weather_hourly WHERE weather_date >= $s AND weather_date < $e "
            "GROUP BY ALL) "
            "SELECT o.origin, x.day, x.hours - coalesce(h.n, 0) AS missing "
            "FROM _expected x CROSS JOIN origins o "
            "LEFT JOIN have h ON h.origin = o.origin AND h.d = x.day "
            "WHERE coalesce(h.n, 0) < x.hours ORDER BY 3 DESC, 2, 1",
            {"s": start, "e": end},
        ).fetchall()
    finally:
        conn.unregister("_expected")


def window_dq(conn: duckdb.DuckDBPyConnection, table: str, start: date, end: date) -> float | None:
    """A table's DQ over [start, end), weighted by rows (None when nothing was scored)."""
    if not table_exists(conn, DQ_TABLE):
        return None
    value = conn.execute(
        f"SELECT sum(dq * rows) / nullif(sum(rows), 0) FROM {DQ_TABLE} WHERE table_name = $t "
        "AND dq IS NOT NULL AND partition_date >= $s AND partition_date < $e",
        {"t": table, "s": start, "e": end},
    ).fetchall()[0][0]
    return None if value is None else float(value)
