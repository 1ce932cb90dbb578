"""Monitoring: a model's health per scored day, kept in the `monitoring` schema.

For day P: drift of the predictions scored for P against the serving model's training
reference, the DQ of P's inputs, and realized performance of the scored day whose outcomes
became known by the end of P (P minus the spec's label lag). Before those labels, the
label-free estimate of P's metric (estimation.py) where the serving model has an estimator;
once they mature, the same estimate sits beside the realized value. The SQL runs in DuckDB; the
scored day's rows (about a thousand) come into pandas for the statistics.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from unified_assets.lib.core.database import table_exists
from unified_assets.lib.features.tables import FEATURE_SOURCES
from unified_assets.lib.models import evaluation
from unified_assets.lib.models.specs import ModelSpec
from unified_assets.lib.monitoring import (
    drift,
    drift_calibration,
    drift_classifier,
    drift_stats,
    estimation,
)
from unified_assets.lib.monitoring.drift_policy import DriftPolicy
from unified_assets.lib.quality import feeds, validation

DRIFT_TABLE = "monitoring.drift_daily"
FEATURE_DRIFT_TABLE = "monitoring.feature_drift"
PERFORMANCE_TABLE = "monitoring.performance_daily"
ESTIMATE_TABLE = "monitoring.estimated_performance"

_DDL = {
    DRIFT_TABLE: "model VARCHAR, day DATE, model_version VARCHAR, rows BIGINT, "
    "prediction_psi DOUBLE, max_feature_psi DOUBLE, drifted_features INTEGER, "
    "drifted_share DOUBLE, is_drift BOOLEAN, input_dq DOUBLE, top_features VARCHAR, "
    "measured_at TIMESTAMP, rule VARCHAR, multivariate_auc DOUBLE, "
    "multivariate_threshold DOUBLE, drift_reasons VARCHAR, inputs_broken BOOLEAN, "
    "input_faults VARCHAR",
    # psi is the statistic and drifted whether it alarmed (kept for older readers)
    FEATURE_DRIFT_TABLE: "model VARCHAR, day DATE, model_version VARCHAR, feature VARCHAR, "
    "kind VARCHAR, psi DOUBLE, ks_statistic DOUBLE, ks_pvalue DOUBLE, drifted BOOLEAN, "
    "statistic DOUBLE, threshold DOUBLE, outside_share DOUBLE, outside_threshold DOUBLE, "
    "alarmed BOOLEAN, rule VARCHAR, input_faults VARCHAR",
    PERFORMANCE_TABLE: "model VARCHAR, day DATE, scored_day DATE, model_version VARCHAR, "
    "rows BIGINT, metric VARCHAR, value DOUBLE, baseline_value DOUBLE, measured_at TIMESTAMP, "
    "estimated_value DOUBLE",
    ESTIMATE_TABLE: "model VARCHAR, day DATE, model_version VARCHAR, rows BIGINT, "
    "metric VARCHAR, method VARCHAR, value DOUBLE, measured_at TIMESTAMP",
}

def predictions_table(spec: ModelSpec) -> str:
    return f"serving.{spec.name}_predictions"


def scored_rows(conn: duckdb.DuckDBPyConnection, spec: ModelSpec, start: date,
                end: date) -> pd.DataFrame:
    """Predictions served for days in [start, end), with the features they were computed
    from and the label (`_actual`, null until known); `_day` is the scored day. In key order:
    the drift classifier samples rows by position, so the same rows give the same verdict."""
    table = predictions_table(spec)
    if not table_exists(conn, table):
        return pd.DataFrame(columns=["_day", "_actual"])
    on = " AND ".join(f"p.{k} = f.{k}" for k in spec.key)
    features = ", ".join(f"f.{c}" for c in spec.features if c not in spec.key)
    return conn.execute(
        f"SELECT p.{spec.date_column} AS _day, p.*, {features}, f.{spec.label} AS _actual "
        f"FROM {table} p "
        f"JOIN {spec.table} f ON {on} WHERE p.{spec.date_column} >= $s "
        f"AND p.{spec.date_column} < $e ORDER BY {', '.join(f'p.{k}' for k in spec.key)}",
        {"s": start, "e": end},
    ).df()


def realized(conn: duckdb.DuckDBPyConnection, spec: ModelSpec, start: date,
             end: date) -> pd.DataFrame:
    """Predictions of the scored days in [start, end) beside what really happened, where it
    is known; `_day` is the scored day.

    Flight models: the flight's own outcome (arrival delay; cancelled and diverted flights have
    none). The forecaster: departures that really left the origin on the forecast's target day.
    """
    table = predictions_table(spec)
    if not table_exists(conn, table):
        return pd.DataFrame(columns=["_day"])
    if spec.table == "features.origin_daily":
        sql = (
            f"SELECT p.feature_date AS _day, p.prediction, p.model_version, "
            f"f.{spec.baseline_column} AS baseline, a.departures AS actual FROM {table} p "
            "JOIN features.origin_daily f USING (feature_date, origin) "
            "JOIN (SELECT origin, flight_date, count(*) FILTER (WHERE NOT is_cancelled) "
            "AS departures FROM warehouse.fct_flights WHERE flight_date >= $s "
            "AND flight_date < $e + INTERVAL 40 DAY GROUP BY ALL) a "
            "ON a.origin = f.origin AND a.flight_date = f.target_date "
            "WHERE p.feature_date >= $s AND p.feature_date < $e"
        )
    else:
        on = " AND ".join(f"p.{k} = f.{k}" for k in spec.key)
        sql = (
            f"SELECT p.{spec.date_column} AS _day, p.prediction, p.model_version, "
            f"f.{spec.label} AS actual FROM {table} p JOIN {spec.table} f ON {on} "
            f"WHERE p.{spec.date_column} >= $s AND p.{spec.date_column} < $e "
            f"AND f.{spec.label} IS NOT NULL"
        )
    return conn.execute(sql, {"s": start, "e": end}).df()


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
            "baseline_value": baseline, "rows": len(frame)}


def input_dq(conn: duckdb.DuckDBPyConnection, spec: ModelSpec, start: date,
             end: date) -> dict[date, float]:
    """Per day in [start, end): the lowest DQ among the curated tables behind the features."""
    if not table_exists(conn, validation.DQ_TABLE):
        return {}
    rows = conn.execute(
        f"SELECT partition_date, min(dq) FROM {validation.DQ_TABLE} WHERE table_name IN "
        f"({', '.join('?' for _ in FEATURE_SOURCES[spec.table])}) AND partition_date >= ? "
        "AND partition_date < ? AND dq IS NOT NULL GROUP BY 1",
        [*FEATURE_SOURCES[spec.table], start, end],
    ).fetchall()
    return {day: float(dq) for day, dq in rows}


def replace_days(conn: duckdb.DuckDBPyConnection, table: str, model: str, start: date, end: date,
             rows: pd.DataFrame) -> None:
    """Replace the model's rows of days [start, end) (caller's transaction)."""
    replace_rows(conn, table, _DDL[table], start, end, rows, model)


def replace_rows(conn: duckdb.DuckDBPyConnection, table: str, ddl: str, start: date, end: date,
                 rows: pd.DataFrame, model: str | None = None) -> None:
    """Replace a monitoring table's rows of days [start, end), of one model or of all
    (caller's transaction); the table is made from `ddl`, and a table made before one of its
    columns existed gets it."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ddl})")
    present = {c[0] for c in conn.execute(f"SELECT * FROM {table} LIMIT 0").description}
    for column in ddl.split(", "):
        if column.split()[0] not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column}")
    which = "" if model is None else "model = $m AND "
    conn.execute(f"DELETE FROM {table} WHERE {which}day >= $s AND day < $e",
                 {"s": start, "e": end} | ({} if model is None else {"m": model}))
    if rows.empty:
        return
    conn.register("_monitoring_rows", rows)
    try:
        # the table's columns the rows have (a writer that predates a column leaves it null)
        columns = [c.split()[0] for c in ddl.split(", ") if c.split()[0] in rows]
        conn.execute(f"INSERT INTO {table} BY NAME SELECT {', '.join(columns)} "
                     "FROM _monitoring_rows")
    finally:
        conn.unregister("_monitoring_rows")


def _by_day(frame: pd.DataFrame) -> dict[date, pd.DataFrame]:
    """The rows of each `_day` (grouped on the column's own values: converting every row to a
    Python date first cost more than the rest of a day's grouping)."""
    if frame.empty:
        return {}
    return {pd.Timestamp(day).date(): group for day, group in frame.groupby("_day")}


def monitor_window(
    conn: duckdb.DuckDBPyConnection, spec: ModelSpec, start: date, end: date, reference_of,
    policy: DriftPolicy, now: datetime, estimator_of=None,
) -> list[dict]:
    """Measure and record every day P in [start, end) for one model: drift of the rows scored
    in the week ending with P against the training reference of the model version that scored
    P (drift.py), the broken-feed warnings of that week's inputs, P's input DQ, and realized
    performance of the day scored `label_lag_days` before P, whose outcomes are known by the
    end of P. Returns what was measured, per day.

    `reference_of(version)` gives the training reference of a served model version (or None);
    `estimator_of(version)` its performance estimator (or None: no estimate, e.g. a model
    trained before estimators existed).
    """
    lag = timedelta(days=spec.label_lag_days)
    window = timedelta(days=policy.window_days - 1)
    scored_all = scored_rows(conn, spec, start - window, end)
    if len(scored_all):  # day order: every trailing window is one slice of the rows
        scored_all = scored_all.sort_values("_day", kind="stable").reset_index(drop=True)
    scored = _by_day(scored_all)
    first = start - window
    # days since `first`, per row
    rank = ((scored_all["_day"].to_numpy(dtype="datetime64[D]") - np.datetime64(first, "D"))
            .astype(int))
    bounds = np.searchsorted(rank, np.arange((end - first).days + 1))  # a day's first row
    learned = learned_drift(scored_all, {d: f for d, f in scored.items() if d >= start}, rank,
                            first, reference_of, policy)
    outcomes = _by_day(realized(conn, spec, start - lag, end - lag))
    dq = input_dq(conn, spec, start, end)
    faults = feeds.feed_faults(conn, FEATURE_SOURCES[spec.table], start - window, end)
    measured, drift_rows, feature_rows, perf_rows, estimate_rows = [], [], [], [], []
    for day in pd.date_range(start, end, inclusive="left").date:
        frame = scored.get(day, pd.DataFrame())
        summary, version, rows = None, None, []
        if not frame.empty:
            version = str(frame["model_version"].iloc[0])
            reference = reference_of(version)
            at = (day - first).days
            trailing = scored_all.iloc[bounds[at + 1 - policy.window_days]:bounds[at + 1]]
            own = trailing[trailing["model_version"].astype(str) == version]
            if reference is not None and drift_calibration.calibrated(reference, policy):
                summary, rows = learned[day](own["prediction"].to_numpy(dtype=float))
            elif reference is not None:
                # The fixed rule: the days before it that the same model version scored.
                summary, rows = drift.day_drift(
                    reference, own, own["prediction"].to_numpy(dtype=float), policy
                )
            if reference is not None:
                broken = window_faults(faults, day - window, day)
                summary |= {"inputs_broken": bool(broken), "input_faults": broken}
                drift_rows.append({
                    "model": spec.name, "day": day, "model_version": version,
                    "rows": summary["rows"], "prediction_psi": summary["prediction_psi"],
                    "max_feature_psi": summary["max_feature_psi"],
                    "drifted_features": summary["drifted_features"],
                    "drifted_share": summary["drifted_share"], "is_drift": summary["is_drift"],
                    "input_dq": dq.get(day), "top_features": ", ".join(summary["top_features"]),
                    "measured_at": now, "rule": summary["rule"],
                    "multivariate_auc": summary["multivariate_auc"],
                    "multivariate_threshold": summary["multivariate_threshold"],
                    "drift_reasons": "; ".join(summary["reasons"]),
                    "inputs_broken": summary["inputs_broken"],
                    "input_faults": describe_faults(broken),
                })
                feature_rows += [r | {"model": spec.name, "day": day, "model_version": version,
                                      "input_faults": describe_faults(broken, r["feature"])}
                                 for r in rows]
        estimate = estimated(frame, estimator_of)
        if estimate is not None:
            estimate_rows.append({"model": spec.name, "day": day, "model_version": version,
                                  "measured_at": now} | estimate)
        outcome = outcomes.get(day - lag, pd.DataFrame())
        result = performance(spec, outcome)
        if result is not None:
            versions = ",".join(sorted(outcome["model_version"].astype(str).unique()))
            # The estimate over the same matured rows, beside the realized value.
            guess = estimated(outcome, estimator_of)
            perf_rows.append({"model": spec.name, "day": day, "scored_day": day - lag,
                              "model_version": versions, "measured_at": now} | result
                             | {"estimated_value": None if guess is None else guess["value"]})
        measured.append({"day": day, "scored_rows": len(frame), "model_version": version,
                         "drift": summary, "features": rows, "input_dq": dq.get(day),
                         "performance": result,
                         "outcome_scored_day": day - lag, "estimate": estimate})
    replace_days(conn, DRIFT_TABLE, spec.name, start, end, pd.DataFrame(drift_rows))
    replace_days(conn, FEATURE_DRIFT_TABLE, spec.name, start, end, pd.DataFrame(feature_rows))
    replace_days(conn, PERFORMANCE_TABLE, spec.name, start, end, pd.DataFrame(perf_rows))
    replace_days(conn, ESTIMATE_TABLE, spec.name, start, end, pd.DataFrame(estimate_rows))
    return measured


def learned_drift(scored_all: pd.DataFrame, scored: dict, rank: np.ndarray, first: date,
                  reference_of, policy: DriftPolicy) -> dict:
    """For each day of `scored` whose model version has learned thresholds: a function of the
    predictions that version made in the day's trailing window giving the window's drift
    summary and feature rows (as `drift.day_drift`). The features' statistics of every window
    come from one pass over the rows per version (`drift.sliding_statistics`); the learned
    thresholds hold for whole windows: a window's rows whichever version scored them (the
    features do not depend on it)."""
    if scored_all.empty:
        return {}
    n_days = int(rank.max()) + 1
    has_rows = np.zeros(n_days)
    has_rows[np.unique(rank)] = 1
    scored_in_window = np.convolve(has_rows, np.ones(policy.window_days))[:n_days]
    bounds = np.searchsorted(rank, np.arange(n_days + 1))
    by_version: dict[str, list[date]] = {}
    for day, frame in scored.items():
        by_version.setdefault(str(frame["model_version"].iloc[0]), []).append(day)
    judged = {}
    for version, days in by_version.items():
        reference = reference_of(version)
        if reference is None or not drift_calibration.calibrated(reference, policy):
            continue
        ends = np.array([(d - first).days for d in days])
        statistics = drift.sliding_statistics(reference, scored_all, rank, ends,
                                              policy.window_days)
        windows = [(int(bounds[max(end + 1 - policy.window_days, 0)]), int(bounds[end + 1]))
                   for end in ends]
        full = [bool(scored_in_window[end] >= policy.window_days) for end in ends]
        # the multivariate classifier of every full window at once (over processes for a
        # backfill): it is most of monitoring's time
        aucs = iter(drift_classifier.multivariate_windows(
            reference, scored_all, [w for w, f in zip(windows, full, strict=True) if f], policy,
            workers=os.cpu_count() or 1,
        ))
        for i, day in enumerate(days):
            judged[day] = partial(
                _judge, reference, {n: (v[0][i], None if v[1] is None else v[1][i])
                                    for n, v in statistics.items()},
                windows[i][1] - windows[i][0], full[i], policy,
                next(aucs) if full[i] else (None, None),
            )
    return judged


def _judge(reference: dict, statistics: dict, rows_in_window: int, full: bool,
           policy: DriftPolicy, auc: tuple, predictions: np.ndarray
           ) -> tuple[dict, list[dict]]:
    rows = [drift.feature_row(reference, name, psi, outside, (None, None), policy, full)
            for name, (psi, outside) in statistics.items()]
    prediction_psi = (drift_stats.feature_psi(reference["prediction"], pd.Series(predictions))
                      if len(predictions) else None)
    return drift.verdict(reference, rows, prediction_psi, *auc, policy, rows_in_window,
                         full), rows


def window_faults(faults: dict[date, dict[str, int]], first: date, last: date) -> dict:
    """The broken-feed warnings of the days first..last: rows per warning, and the days."""
    found: dict[str, dict] = {}
    for day in sorted(d for d in faults if first <= d <= last):
        for check, rows in faults[day].items():
            entry = found.setdefault(check, {"rows": 0, "days": []})
            entry["rows"] += rows
            entry["days"].append(str(day))
    return found


def describe_faults(found: dict, feature: str | None = None) -> str | None:
    """`warn_wind_stuck (wind_speed_mph): 19 rows on 2013-02-19` for each broken-feed warning
    (for one feature: those that concern it); None when there is none."""
    concerns = {c: cols for checks in feeds.FEED_FAULTS.values() for c, cols in checks.items()}
    parts = [f"{check} ({', '.join(concerns.get(check, ()))}): {e['rows']} rows on "
             f"{', '.join(e['days'])}" for check, e in sorted(found.items())
             if feature is None or feature in concerns.get(check, ())]
    return "; ".join(parts) or None


def estimated(frame: pd.DataFrame, estimator_of) -> dict | None:
    """The label-free estimate of the metric over a scored day's predictions (one model
    version), or None: no estimator for that version, several versions, nothing scored."""
    if estimator_of is None or frame.empty:
        return None
    versions = frame["model_version"].astype(str).unique()
    if len(versions) != 1:
        return None
    return estimation.estimate(estimator_of(versions[0]),
                               frame["prediction"].to_numpy(dtype=float))


def estimates(conn: duckdb.DuckDBPyConnection, model: str) -> pd.DataFrame:
    """Every recorded estimate of a model (one row per scored day), in day order."""
    if not table_exists(conn, ESTIMATE_TABLE):
        return pd.DataFrame(columns=["day", "model_version", "rows", "metric", "value"])
    return conn.execute(f"SELECT * FROM {ESTIMATE_TABLE} WHERE model = $m ORDER BY day",
                        {"m": model}).df()


def history(conn: duckdb.DuckDBPyConnection, model: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every recorded drift and performance day of a model, in day order."""
    frames = []
    for table in (DRIFT_TABLE, PERFORMANCE_TABLE):
        if table_exists(conn, table):
            frames.append(conn.execute(f"SELECT * FROM {table} WHERE model = $m ORDER BY day",
                                       {"m": model}).df())
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


KPI_TABLE = "monitoring.kpi_history"


def record_kpis(conn: duckdb.DuckDBPyConnection, values: dict, now: datetime) -> pd.DataFrame:
    """Append this scorecard's KPI values; returns every scorecard so far (caller's
    transaction)."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {KPI_TABLE} (measured_at TIMESTAMP, kpi VARCHAR, "
                 "value DOUBLE)")
    rows = pd.DataFrame([{"measured_at": now, "kpi": k, "value": v} for k, v in values.items()
                         if v is not None])
    if not rows.empty:
        conn.register("_kpi_rows", rows)
        try:
            conn.execute(f"INSERT INTO {KPI_TABLE} SELECT measured_at, kpi, value FROM _kpi_rows")
        finally:
            conn.unregister("_kpi_rows")
    return conn.execute(f"SELECT * FROM {KPI_TABLE} ORDER BY measured_at, kpi").df()


def dq_summary(conn: duckdb.DuckDBPyConnection, days: int = 7) -> pd.DataFrame:
    """DQ per table over its last `days` partitions (whole for unpartitioned tables)."""
    if not table_exists(conn, validation.DQ_TABLE):
        return pd.DataFrame(columns=["table_name", "latest_partition", "dq"])
    return conn.execute(
        f"""
        WITH ranked AS (
            SELECT *, dense_rank() OVER (PARTITION BY table_name
                                         ORDER BY partition_date DESC NULLS LAST) AS r
            FROM {validation.DQ_TABLE})
        SELECT table_name, max(partition_date) AS latest_partition,
               sum(dq * rows) / nullif(sum(rows), 0) AS dq,
               sum(completeness * rows) / nullif(sum(rows), 0) AS completeness,
               sum(accuracy * rows) / nullif(sum(rows), 0) AS accuracy,
               sum(validity * rows) / nullif(sum(rows), 0) AS validity
        FROM ranked WHERE r <= $days GROUP BY 1 ORDER BY 1
        """,
        {"days": days},
    ).df()
