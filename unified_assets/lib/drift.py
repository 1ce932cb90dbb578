"""Drift: how far a scored day's inputs and predictions are from what the model was trained on.

A model carries a reference profile of its training data (fixed bins and quantiles, recorded
when it is trained). Each scored day is compared with it: PSI over the reference bins for every
feature and for the predictions, and a one-sample KS test for numeric features. Plain numpy;
no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

QUANTILES = 101  # percentiles kept per numeric feature: KS's reference distribution
BINS = 10  # PSI bins per numeric feature: the reference deciles
EPS = 1e-4  # share given to an empty bin so that PSI stays finite
OTHER = "__other__"
NULL = "__null__"


# Features that are the calendar itself (one value per day): a day's weekday always differs
# from a training reference spread over every weekday, so they are not watched for drift.
CALENDAR_FEATURES = frozenset(
    {"day_of_week", "days_to_holiday", "target_day_of_week", "target_days_to_holiday", "month"}
)


@dataclass(frozen=True)
class DriftPolicy:
    """When a feature, the predictions, or a whole scored day count as drifted.

    A day is judged on the trailing `window_days` scored days ending with it: one day's flights
    share their weather, their weekday and their delay rates, so a single day looks drifted
    against any multi-week reference; a week of them does not, unless something moved.
    """

    window_days: int = 7  # the settings resource's drift_window_days
    psi_threshold: float = 0.2  # the usual "significant shift" line for PSI
    ks_alpha: float = 0.01  # a numeric feature drifts only if its KS test also rejects
    # A day drifts if half the watched features drift... (a week of per-origin delay rates
    # always looks shifted against a 90-day reference, so a quarter would fire every week)
    feature_share: float = 0.5
    prediction_psi: float = 0.2  # ...or the predictions' PSI reaches this

    def __post_init__(self):
        if self.window_days < 1:
            raise ValueError(f"the drift window must be at least one day, not {self.window_days}")


def _numeric(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def numeric_profile(values: pd.Series) -> dict:
    """Reference of a numeric column: percentiles, decile bin edges and the share per bin."""
    x = _numeric(values)
    known = x[~np.isnan(x)]
    null_share = float(1 - len(known) / len(x)) if len(x) else 0.0
    if not len(known):
        return {"kind": "numeric", "quantiles": [], "edges": [], "shares": [],
                "null_share": null_share}  # fmt: skip
    quantiles = np.quantile(known, np.linspace(0, 1, QUANTILES))
    edges = np.unique(np.quantile(known, np.linspace(0, 1, BINS + 1))[1:-1])
    shares = _bin_shares(known, edges) * (1 - null_share)
    return {
        "kind": "numeric",
        "quantiles": [float(q) for q in quantiles],
        "edges": [float(e) for e in edges],
        "shares": [float(s) for s in shares],
        "null_share": null_share,
    }


def categorical_profile(values: pd.Series, top: int = 30) -> dict:
    """Reference of a categorical column: share of each of its `top` values, the rest pooled."""
    text = values.astype("string")
    counts = text.fillna(NULL).value_counts()
    total = float(counts.sum()) or 1.0
    kept = counts.head(top)
    shares = {str(k): float(v / total) for k, v in kept.items()}
    rest = float(counts.iloc[top:].sum() / total) if len(counts) > top else 0.0
    shares[OTHER] = shares.get(OTHER, 0.0) + rest
    return {"kind": "categorical", "shares": shares}


def _bin_shares(known: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, known, side="right"), minlength=len(edges) + 1)
    return counts / max(len(known), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: Σ (a − e) · ln(a / e) over the same bins."""
    e = np.clip(np.asarray(expected, dtype=float), EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_psi(profile: dict, values: pd.Series) -> float:
    x = _numeric(values)
    known = x[~np.isnan(x)]
    null_share = float(1 - len(known) / len(x)) if len(x) else 0.0
    edges = np.asarray(profile["edges"], dtype=float)
    actual = np.zeros(len(edges) + 1)
    if len(known):
        actual = _bin_shares(known, edges) * (1 - null_share)
    expected = np.asarray(profile["shares"], dtype=float) if profile["shares"] else actual * 0
    return psi(np.append(expected, profile["null_share"]), np.append(actual, null_share))


def categorical_psi(profile: dict, values: pd.Series) -> float:
    text = values.astype("string").fillna(NULL)
    known = profile["shares"]
    mapped = text.where(text.isin(list(known)), OTHER)
    counts = mapped.value_counts(normalize=True)
    names = list(known)
    return psi(np.array([known[n] for n in names]),
               np.array([float(counts.get(n, 0.0)) for n in names]))  # fmt: skip


def ks_test(profile: dict, values: pd.Series) -> tuple[float | None, float | None]:
    """One-sample KS of the day's values against the reference percentiles: (D, p-value)."""
    x = _numeric(values)
    known = np.sort(x[~np.isnan(x)])
    reference = np.asarray(profile["quantiles"], dtype=float)
    if not len(known) or not len(reference):
        return None, None
    points = np.union1d(known, reference)
    f_ref = np.searchsorted(reference, points, side="right") / len(reference)
    f_day = np.searchsorted(known, points, side="right") / len(known)
    statistic = float(np.max(np.abs(f_ref - f_day)))
    return statistic, ks_pvalue(statistic, len(known))


EXACT_KS_ROWS = 1_000
"""Up to this many values the exact KS distribution; beyond it, the asymptotic one: within 2%
of the exact p-value there, and ~50 times cheaper (a week of flights is ~6,000 values)."""


def ks_pvalue(statistic: float, n: int) -> float:
    if n <= EXACT_KS_ROWS:
        return float(stats.kstwo.sf(statistic, n))
    return float(stats.kstwobign.sf(statistic * np.sqrt(n)))


def reference_profile(frame: pd.DataFrame, features: list[str], categorical: list[str],
                      predictions: np.ndarray) -> dict:  # fmt: skip
    """What a model was trained on, kept beside it: one profile per feature and one for its
    predictions on the validation window."""
    profiles = {
        name: categorical_profile(frame[name]) if name in categorical
        else numeric_profile(frame[name])
        for name in features
    }  # fmt: skip
    return {"rows": len(frame), "features": profiles,
            "prediction": numeric_profile(pd.Series(predictions))}  # fmt: skip


def feature_drift(reference: dict, frame: pd.DataFrame, policy: DriftPolicy) -> list[dict]:
    """One row per feature: PSI against the reference bins, KS for numeric ones, drifted?"""
    rows = []
    for name, profile in reference["features"].items():
        if name not in frame.columns or name in CALENDAR_FEATURES:
            continue
        if profile["kind"] == "categorical":
            value, ks_stat, ks_p = categorical_psi(profile, frame[name]), None, None
            drifted = value >= policy.psi_threshold
        else:
            value = numeric_psi(profile, frame[name])
            ks_stat, ks_p = ks_test(profile, frame[name])
            drifted = value >= policy.psi_threshold and ks_p is not None and ks_p < policy.ks_alpha
        rows.append({"feature": name, "kind": profile["kind"], "psi": value,
                     "ks_statistic": ks_stat, "ks_pvalue": ks_p,
                     "drifted": bool(drifted)})  # fmt: skip
    return rows


def day_drift(reference: dict, frame: pd.DataFrame, predictions: np.ndarray,
              policy: DriftPolicy) -> tuple[dict, list[dict]]:  # fmt: skip
    """A scored day's drift summary and its per-feature rows."""
    rows = feature_drift(reference, frame, policy)
    prediction_psi = numeric_psi(reference["prediction"], pd.Series(predictions))
    drifted = [r["feature"] for r in rows if r["drifted"]]
    share = len(drifted) / len(rows) if rows else 0.0
    top = sorted(rows, key=lambda r: r["psi"], reverse=True)[:3]
    summary = {
        "rows": len(frame),
        "prediction_psi": prediction_psi,
        "max_feature_psi": max((r["psi"] for r in rows), default=0.0),
        "drifted_features": len(drifted),
        "drifted_share": share,
        "top_features": [f"{r['feature']}={r['psi']:.2f}" for r in top],
        "is_drift": bool(share >= policy.feature_share or prediction_psi >= policy.prediction_psi),
    }
    return summary, rows
