"""Synthetic data with known answers for the monitoring tests of both tiers, without Dagster:
scored days whose features drift as chosen, the drift reference learned from them, and scores
with known outcomes monitored over four days."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from unified_assets.lib.models import specs
from unified_assets.lib.monitoring import drift, drift_classifier, estimation, model_health
from unified_assets.lib.monitoring.drift_policy import DriftPolicy

# -- scored days and their drift reference -------------------------------------------------------
FEATURES = ["a", "b", "c", "x1", "x2", "capped", "day_of_week"]
CATEGORICAL = ["c"]
FIRST = date(2013, 3, 4)


def synthetic_days(first: date, n_days: int, seed: int, per_day: int = 400) -> pd.DataFrame:
    """Synthetic scored days: `a` moves from week to week (weather-like), `b` and `c` are
    stable, `x2` follows `x1`, `capped` is visibility-like (10 most of the time, never above)."""
    rng = np.random.default_rng(seed)
    weekly = rng.normal(0, 1.0, n_days // 7 + 1)
    frames = []
    for i in range(n_days):
        x1 = rng.normal(0, 1, per_day)
        frames.append(pd.DataFrame({
            "day": first + timedelta(days=i),
            "a": rng.normal(weekly[i // 7], 1, per_day),
            "b": rng.normal(5, 2, per_day),
            "c": rng.choice(["x", "y", "z"], per_day, p=[0.5, 0.3, 0.2]),
            "x1": x1, "x2": x1 + rng.normal(0, 0.3, per_day),
            "capped": np.where(rng.uniform(size=per_day) < 0.8, 10.0,
                               rng.uniform(0, 10, per_day).round(1)),
            "day_of_week": (first + timedelta(days=i)).isoweekday(),
        }))
    return pd.concat(frames, ignore_index=True)


def drift_reference(train: pd.DataFrame, policy: DriftPolicy) -> dict:
    """The reference `train`'s weeks give (lib/monitoring/drift.py), with its classifier's
    sample of rows."""
    built, sample = drift.build_reference(train, FEATURES, CATEGORICAL,
                                          np.random.default_rng(2).uniform(size=2000),
                                          train["day"], policy.window_days)
    assert sample is not None and len(sample) == drift.SAMPLE_ROWS
    return built | {drift_classifier.SAMPLE: sample}


# -- scores with known outcomes -------------------------------------------------------------------
def sample(n: int, seed: int, shift: float = 0.0,
           spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores and outcomes where P(late | score) = score = sigmoid(1.5 z - 1.2) exactly; the
    day's flights (z) may be riskier (`shift`) or more alike (`spread`)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(shift, spread, n)
    p = 1.0 / (1.0 + np.exp(-(1.5 * z - 1.2)))
    return p, (rng.random(n) < p).astype(float)


def monitor_four_days(conn: duckdb.DuckDBPyConnection) -> dict:
    """May 1-4 2013 scored by the delay classifier, 3,000 flights a day with their outcomes,
    versions "old", "old", "new", "new" (only "new" has an estimator), then monitored as one
    window, over a performance table from before estimates existed. Returns the first day, the
    scored and the flight frames per day, what the monitor measured and the versions it asked
    an estimator for."""
    spec = specs.DELAY_CLASSIFIER
    for schema in ("serving", "features", "monitoring"):
        conn.execute(f"CREATE SCHEMA {schema}")
    # A table made before estimates existed keeps its rows and gains the column.
    conn.execute("CREATE TABLE monitoring.performance_daily (model VARCHAR, day DATE, "
                 "scored_day DATE, model_version VARCHAR, rows BIGINT, metric VARCHAR, "
                 "value DOUBLE, baseline_value DOUBLE, measured_at TIMESTAMP)")
    conn.execute("INSERT INTO monitoring.performance_daily VALUES ('delay_classifier', "
                 "'2013-04-01', '2013-03-31', 'older', 900, 'auc', 0.7, NULL, now())")
    first = date(2013, 5, 1)
    scored, flights = [], []
    for i, version in enumerate(["old", "old", "new", "new"]):  # "old": no estimator
        p, y = sample(3_000, seed=20 + i)
        day = first + timedelta(days=i)
        keys = pd.DataFrame({"flight_date": day, "carrier": "AA", "flight": np.arange(3_000),
                             "origin": "JFK", "sched_dep_ts": pd.Timestamp(day)})
        scored.append(keys.assign(prediction=p, model_version=version))
        flights.append(keys.assign(**{c: np.nan for c in spec.features if c not in keys},
                                   is_late_15=y.astype(bool)))
    conn.register("_s", pd.concat(scored))
    conn.register("_f", pd.concat(flights))
    conn.execute("CREATE TABLE serving.delay_classifier_predictions AS SELECT * FROM _s")
    conn.execute("CREATE TABLE features.flight_features AS SELECT * FROM _f")
    valid_p, valid_y = sample(20_000, seed=30)
    estimator = estimation.fit_estimator("binary", valid_y, valid_p)
    asked = []

    def estimator_of(version):
        asked.append(version)
        return estimator if version == "new" else None

    measured = model_health.monitor_window(
        conn, spec, first, first + timedelta(days=4), lambda version: None, DriftPolicy(),
        datetime(2013, 5, 5), estimator_of,
    )
    return {"first": first, "scored": scored, "flights": flights, "measured": measured,
            "asked": asked}
