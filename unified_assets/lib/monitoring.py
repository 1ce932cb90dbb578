"""Monitoring: a model's health per scored day, kept in the `monitoring` schema.

For day P: drift of the predictions scored for P against the serving model's training
reference, the DQ of P's inputs, and realized performance of the scored day whose outcomes
became known by the end of P (P minus the spec's label lag). The SQL runs in DuckDB; the
scored day's rows (about a thousand) come into pandas for the statistics.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from unified_assets.lib import drift, evaluation, quality
from unified_assets.lib.features import FEATURE_SOURCES
from unified_assets.lib.models import ModelSpec
from unified_assets.lib.warehouse import table_exists

DRIFT_TABLE = "monitoring.drift_daily"
FEATURE_DRIFT_TABLE = "monitoring.feature_drift"
PERFORMANCE_TABLE = "monitoring.performance_daily"

_DDL = {
    DRIFT_TABLE: "model VARCHAR, day DATE, model_version VARCHAR, rows BIGINT, "
    "prediction_psi DOUBLE, max_feature_psi DOUBLE, drifted_features INTEGER, "
    "drifted_share DOUBLE, is_drift BOOLEAN, input_dq DOUBLE, top_features VARCHAR, "
    "measured_at TIMESTAMP",
    FEATURE_DRIFT_TABLE: "model VARCHAR, day DATE, model_version VARCHAR, feature VARCHAR, "
    "kind VARCHAR, psi DOUBLE, ks_statistic DOUBLE, ks_pvalue DOUBLE, drifted BOOLEAN",
    PERFORMANCE_TABLE: "model VARCHAR, day DATE, scored_day DATE, model_version VARCHAR, "
    "rows BIGINT, metric VARCHAR, value DOUBLE, baseline_value DOUBLE, measured_at TIMESTAMP",
}

def predictions_table(spec: ModelSpec) -> str:
    return f"serving.{spec.name}_predictions"


def scored_day(conn: duckdb.DuckDBPyConnection, spec: ModelSpec, day: date) -> pd.DataFrame:
    """The predictions served for `day` with the features they were computed from."""
    table = predictions_table(spec)
    if not table_exists(conn, table):
        return pd.DataFrame()
    on = " AND ".join(f"p.{k} = f.{k}" for k in spec.key)
    features = ", ".join(f"f.{c}" for c in spec.features if c not in spec.key)
    return conn.execute(
        f"SELECT p.*, {features} FROM {table} p JOIN {spec.table} f ON {on} "
        f"WHERE p.{spec.date_column} = $d",
        {"d": day},
    ).df()


def realized(conn: duckdb.DuckDBPyConnection, spec: ModelSpec, day: date) -> pd.DataFrame:
    """Predictions of the scored day `day` beside what really happened, where it is known.

    Flight models: the flight's own outcome (arrival delay; cancelled and diverted flights have
    none). The forecaster: departures that really left the origin on the forecast's target day.
    """
    table = predictions_table(spec)
    if not table_exists(conn, table):
        return pd.DataFrame()
    if spec.table == "features.origin_daily":
        sql = (
            f"SELECT p.prediction, p.model_version, f.{spec.baseline_column} AS baseline, "
            "a.departures AS actual FROM {pred} p JOIN features.origin_daily f "
            "USING (feature_date, origin) JOIN (SELECT origin, flight_date, "
            "count(*) FILTER (WHERE NOT is_cancelled) AS departures "
            "FROM warehouse.fct_flights GROUP BY ALL) a "
            "ON a.origin = f.origin AND a.flight_date = f.target_date "
            "WHERE p.feature_date = $d"
        ).format(pred=table)
    else:
        on = " AND ".join(f"p.{k} = f.{k}" for k in spec.key)
        sql = (
            f"SELECT p.prediction, p.model_version, f.{spec.label} AS actual FROM {table} p "
            f"JOIN {spec.table} f ON {on} WHERE p.{spec.date_column} = $d "
            f"AND f.{spec.label} IS NOT NULL"
        )
    return conn.execute(sql, {"d": day}).df()


def performance(spec: ModelSpec, frame: pd.DataFrame) -> dict | None:
    """The realized primary metric (AUC or MAE), and the naive baseline's where there is one."""
    if frame.empty:
        return None
    y = frame["actual"].to_numpy(dtype=float)
    pred = frame["prediction"].to_numpy(dtype=float)
    if spec.task == "binary" and len(np.unique(y)) < 2:
        return None  # AUC is undefined on a day with a single outcome
    value = evaluation.primary(spec.task, y, pred)
    baseline = None
    if "baseline" in frame and frame["baseline"].notna().all():
        baseline = evaluation.mae(y, frame["baseline"].to_numpy(dtype=float))
    return {"metric": "auc" if spec.task == "binary" else "mae", "value": value,
            "baseline_value": baseline, "rows": len(frame)}  # fmt: skip


def input_dq(conn: duckdb.DuckDBPyConnection, spec: ModelSpec, day: date) -> float | None:
    """The lowest DQ among the curated tables behind the model's features, for `day`."""
    values = [quality.window_dq(conn, t, day, day + timedelta(days=1))
              for t in FEATURE_SOURCES[spec.table]]  # fmt: skip
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _replace(conn: duckdb.DuckDBPyConnection, table: str, model: str, day: date,
             rows: pd.DataFrame) -> None:  # fmt: skip
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({_DDL[table]})")
    conn.execute(f"DELETE FROM {table} WHERE model = $m AND day = $d", {"m": model, "d": day})
    if rows.empty:
        return
    conn.register("_monitoring_rows", rows)
    try:
        columns = [c.split()[0] for c in _DDL[table].split(", ")]
        conn.execute(f"INSERT INTO {table} BY NAME SELECT {', '.join(columns)} "
                     "FROM _monitoring_rows")  # fmt: skip
    finally:
        conn.unregister("_monitoring_rows")


def record_drift(conn: duckdb.DuckDBPyConnection, model: str, day: date, version: str | None,
                 summary: dict | None, rows: list[dict], dq: float | None,
                 now: datetime) -> None:  # fmt: skip
    """Replace the day's drift rows (caller's transaction)."""
    if summary is None:
        frame = pd.DataFrame()
    else:
        frame = pd.DataFrame([{
            "model": model, "day": day, "model_version": version, "rows": summary["rows"],
            "prediction_psi": summary["prediction_psi"],
            "max_feature_psi": summary["max_feature_psi"],
            "drifted_features": summary["drifted_features"],
            "drifted_share": summary["drifted_share"], "is_drift": summary["is_drift"],
            "input_dq": dq, "top_features": ", ".join(summary["top_features"]),
            "measured_at": now,
        }])  # fmt: skip
    _replace(conn, DRIFT_TABLE, model, day, frame)
    features = pd.DataFrame(rows).assign(model=model, day=day, model_version=version)
    _replace(conn, FEATURE_DRIFT_TABLE, model, day, features if rows else pd.DataFrame())


def record_performance(conn: duckdb.DuckDBPyConnection, model: str, day: date, scored: date,
                       versions: str | None, result: dict | None,
                       now: datetime) -> None:  # fmt: skip
    """Replace the outcome day's realized performance (caller's transaction)."""
    frame = pd.DataFrame()
    if result is not None:
        row = {"model": model, "day": day, "scored_day": scored, "model_version": versions,
               "measured_at": now}  # fmt: skip
        frame = pd.DataFrame([row | result])
    _replace(conn, PERFORMANCE_TABLE, model, day, frame)


def monitor_day(conn: duckdb.DuckDBPyConnection, spec: ModelSpec, day: date,
                reference_of, policy: drift.DriftPolicy, now: datetime) -> dict:  # fmt: skip
    """Measure and record day `day` for one model; returns what was measured.

    `reference_of(version)` gives the training reference of a served model version (or None).
    """
    scored = scored_day(conn, spec, day)
    summary, rows, version = None, [], None
    if not scored.empty:
        version = str(scored["model_version"].iloc[0])
        reference = reference_of(version)
        if reference is not None:
            summary, rows = drift.day_drift(
                reference, scored, scored["prediction"].to_numpy(dtype=float), policy
            )
    dq = input_dq(conn, spec, day)
    record_drift(conn, spec.name, day, version, summary, rows, dq, now)
    outcome_scored = day - timedelta(days=spec.label_lag_days)
    outcomes = realized(conn, spec, outcome_scored)
    result = performance(spec, outcomes)
    versions = None
    if not outcomes.empty:
        versions = ",".join(sorted(outcomes["model_version"].astype(str).unique()))
    record_performance(conn, spec.name, day, outcome_scored, versions, result, now)
    return {"scored_rows": len(scored), "model_version": version, "drift": summary,
            "input_dq": dq, "performance": result,
            "outcome_scored_day": outcome_scored}  # fmt: skip


def history(conn: duckdb.DuckDBPyConnection, model: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every recorded drift and performance day of a model, in day order."""
    frames = []
    for table in (DRIFT_TABLE, PERFORMANCE_TABLE):
        if table_exists(conn, table):
            frames.append(conn.execute(f"SELECT * FROM {table} WHERE model = $m ORDER BY day",
                                       {"m": model}).df())  # fmt: skip
        else:
            frames.append(pd.DataFrame())
    return frames[0], frames[1]


def failed_runs_path(home: Path) -> Path:
    return Path(home) / "monitoring" / "failed_runs.jsonl"


def record_failed_run(home: Path, entry: dict) -> None:
    """Append one failed run (one JSON line, written whole; a run is recorded once)."""
    path = failed_runs_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    known = {r["run_id"] for r in failed_runs(home)}
    if entry["run_id"] in known:
        return
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry, sort_keys=True, default=str) + "\n")


def failed_runs(home: Path) -> list[dict]:
    path = failed_runs_path(home)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip().endswith("}")]
