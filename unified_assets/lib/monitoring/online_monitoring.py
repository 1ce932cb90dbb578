"""The online service's logged predictions in the warehouse, and what monitoring needs of them:
per day, model and version, the traffic, its latency, unseen categories, the drift of the
trailing week's online rows against the version's training reference (the batch monitor's rule,
drift.py), the realized metric once the outcomes are known, and how far online scores stray
from the batch scores of the same flights by the same version (training-serving skew: it should
be 0)."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from unified_assets.lib.core.database import table_exists
from unified_assets.lib.models.evaluation import auc, mae
from unified_assets.lib.models.specs import SPECS
from unified_assets.lib.monitoring import drift
from unified_assets.lib.monitoring.drift_policy import DriftPolicy
from unified_assets.lib.monitoring.model_health import replace_rows

PREDICTIONS = "monitoring.online_predictions"
DAILY = "monitoring.online_daily"

_PREDICTION_COLUMNS = (
    "day DATE, request_id VARCHAR, received_at TIMESTAMP, model VARCHAR, model_version VARCHAR, "
    "flight_date DATE, carrier VARCHAR, flight INTEGER, origin VARCHAR, dest VARCHAR, "
    "sched_dep_ts TIMESTAMP, feature_date DATE, prediction DOUBLE, unseen VARCHAR, "
    "flags VARCHAR, features VARCHAR, latency_ms DOUBLE"
)
_DAILY_COLUMNS = (
    "day DATE, model VARCHAR, model_version VARCHAR, requests BIGINT, rows BIGINT, "
    "latency_p50_ms DOUBLE, latency_p99_ms DOUBLE, unseen_share DOUBLE, metric VARCHAR, "
    "realized DOUBLE, labelled_rows BIGINT, batch_matched_rows BIGINT, max_batch_gap DOUBLE, "
    "drift_rows BIGINT, drift_rule VARCHAR, prediction_psi DOUBLE, drifted_features INTEGER, "
    "drifted_share DOUBLE, is_drift BOOLEAN, drift_reasons VARCHAR, top_features VARCHAR"
)


def _flatten(frame: pd.DataFrame) -> pd.DataFrame:
    """Log records (one per scored row) as table rows."""
    if frame.empty:
        return pd.DataFrame(columns=[c.split()[0] for c in _PREDICTION_COLUMNS.split(", ")])
    keys = pd.json_normalize(frame["key"].tolist())
    out = pd.DataFrame({
        "day": pd.to_datetime(frame["day"]).dt.date, "request_id": frame["request_id"],
        "received_at": pd.to_datetime(frame["received_at"], utc=True).dt.tz_localize(None),
        "model": frame["model"], "model_version": frame["model_version"],
    })
    sources = {"flight_date": "flight_date", "carrier": "carrier", "flight": "flight",
               "origin": "origin", "dest": "dest", "sched_dep_ts": "sched_dep",
               "feature_date": "feature_date"}
    for column, source in sources.items():
        out[column] = keys[source].to_numpy() if source in keys else None
    out["flight_date"] = pd.to_datetime(out["flight_date"]).dt.date
    out["feature_date"] = pd.to_datetime(out["feature_date"]).dt.date
    out["sched_dep_ts"] = pd.to_datetime(out["sched_dep_ts"])
    out["flight"] = pd.to_numeric(out["flight"]).astype("Int64")
    out["prediction"] = frame["prediction"].astype(float)
    out["unseen"] = frame["unseen"].map(lambda v: ",".join(v) if isinstance(v, list) else None)
    out["flags"] = frame["flags"].map(lambda v: ",".join(v) if isinstance(v, list) else None)
    out["features"] = frame["features"].map(lambda v: json.dumps(v, default=str))
    out["latency_ms"] = frame["latency_ms"].astype(float)
    return out


def _summary(conn: duckdb.DuckDBPyConnection, rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (day, model, version), part in rows.groupby(["day", "model", "model_version"]):
        spec = SPECS.get(model)
        per_request = part.groupby("request_id")["latency_ms"].first()
        record = {"day": day, "model": model, "model_version": version,
                  "requests": len(per_request), "rows": len(part),
                  "latency_p50_ms": float(np.percentile(per_request, 50)),
                  "latency_p99_ms": float(np.percentile(per_request, 99)),
                  "unseen_share": float(part["unseen"].fillna("").ne("").mean()),
                  "metric": None, "realized": None, "labelled_rows": 0,
                  "batch_matched_rows": 0, "max_batch_gap": None}
        if spec is not None:
            record |= _against_truth(conn, spec, part)
        out.append(record)
    return pd.DataFrame(out)


def _against_truth(conn: duckdb.DuckDBPyConnection, spec, part: pd.DataFrame) -> dict:
    """Realized metric over the rows whose outcome is known; the gap to batch predictions."""
    conn.register("_online", part)
    try:
        batch = f"serving.{spec.name}_predictions"
        if spec.task == "forecast":
            truth = conn.execute(
                "SELECT o.prediction, d.departures_target AS y FROM _online o "
                "JOIN features.origin_daily d ON d.origin = o.origin "
                "AND d.feature_date = o.feature_date WHERE d.departures_target IS NOT NULL"
            ).df()
            on = "b.origin = o.origin AND b.feature_date = o.feature_date"
        else:  # the label the model was trained on, from its own feature table
            truth = conn.execute(
                f"SELECT o.prediction, f.{spec.label} AS y FROM _online o JOIN {spec.table} f "
                f"ON {' AND '.join(f'f.{k} = o.{k}' for k in spec.key)} "
                f"WHERE f.{spec.label} IS NOT NULL"
            ).df()
            on = ("b.flight_date = o.flight_date AND b.carrier = o.carrier AND b.flight = o.flight "
                  "AND b.origin = o.origin AND b.sched_dep_ts = o.sched_dep_ts")
        gap = (0, None)
        if table_exists(conn, batch):
            gap = conn.execute(
                f"SELECT count(*), max(abs(o.prediction - b.prediction)) FROM _online o "
                f"JOIN {batch} b ON {on} AND b.model_version = o.model_version"
            ).fetchall()[0]
    finally:
        conn.unregister("_online")
    y, p = truth["y"].to_numpy(float), truth["prediction"].to_numpy(float)
    realized = None
    if len(y) and spec.task == "binary" and 0 < y.sum() < len(y):
        realized = auc(y, p)
    elif len(y) and spec.task != "binary":
        realized = mae(y, p)
    return {"metric": "auc" if spec.task == "binary" else "mae", "realized": realized,
            "labelled_rows": len(y), "batch_matched_rows": int(gap[0]),
            "max_batch_gap": None if gap[1] is None else float(gap[1])}


def record(conn: duckdb.DuckDBPyConnection, log_rows: pd.DataFrame, start: date, end: date,
           reference_of=None, policy: DriftPolicy | None = None
           ) -> tuple[int, pd.DataFrame]:
    """Replace the days [start, end) of the online tables with the logged rows; returns the
    rows written and the per day, model and version summary. `reference_of(version)` gives a
    served version's drift reference (None: no drift measured)."""
    rows = _flatten(log_rows)
    summary = _summary(conn, rows) if len(rows) else pd.DataFrame()
    replace_rows(conn, PREDICTIONS, _PREDICTION_COLUMNS, start, end, rows)
    if len(summary) and reference_of is not None:
        judged = online_drift(conn, summary, reference_of, policy or DriftPolicy())
        summary = summary.merge(judged, on=["day", "model", "model_version"], how="left")
    replace_rows(conn, DAILY, _DAILY_COLUMNS, start, end, summary)
    return len(rows), summary


def online_drift(conn: duckdb.DuckDBPyConnection, summary: pd.DataFrame, reference_of,
                 policy: DriftPolicy) -> pd.DataFrame:
    """For each day, model and version of `summary`: drift of the version's online rows of
    the trailing `window_days` days (from monitoring.online_predictions) against its training
    reference. Full windows are held to the learned thresholds; shorter ones only to the
    predictions' PSI, as in the batch monitor."""
    out = []
    for (day, model, version), _ in summary.groupby(["day", "model", "model_version"]):
        reference = reference_of(version)
        if reference is None:
            continue
        trailing = conn.execute(
            f"SELECT day, prediction, features FROM {PREDICTIONS} WHERE model = $m AND "
            "model_version = $v AND day > $d - $w AND day <= $d",
            {"m": model, "v": version, "d": day, "w": policy.window_days},
        ).df()
        features = pd.DataFrame([json.loads(f) for f in trailing["features"]])
        full = trailing["day"].nunique() >= policy.window_days
        result, _ = drift.day_drift(reference, features, trailing["prediction"].to_numpy(float),
                                    policy, full_window=full)
        out.append({"day": day, "model": model, "model_version": version,
                    "drift_rows": result["rows"], "drift_rule": result["rule"],
                    "prediction_psi": result["prediction_psi"],
                    "drifted_features": result["drifted_features"],
                    "drifted_share": result["drifted_share"], "is_drift": result["is_drift"],
                    "drift_reasons": "; ".join(result["reasons"]),
                    "top_features": ", ".join(result["top_features"])})
    columns = ["day", "model", "model_version", "drift_rows", "drift_rule", "prediction_psi",
               "drifted_features", "drifted_share", "is_drift", "drift_reasons", "top_features"]
    return pd.DataFrame(out, columns=columns)
