"""Drift statistics of one feature: its reference profile (fixed bins per number, the share of
each category, the range, the percentiles) and how far a window's values lie from it (PSI over
the reference's bins, the share outside the training range, a one-sample KS test).

Part of the drift check (lib/monitoring/drift.py). Plain numpy, pandas and scipy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

QUANTILES = 101  # percentiles kept per numeric feature: KS's reference distribution
BINS = 10  # PSI bins per numeric feature: the reference deciles
EPS = 1e-4  # share given to an empty bin so that PSI stays finite
OTHER = "__other__"
NULL = "__null__"


def numeric(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _edges(known: np.ndarray) -> np.ndarray:
    """Decile edges; a value that holds at least half a decile gets a bin of its own (the zero
    of precipitation, the 10 miles of visibility), so a change in its mass shows."""
    edges = np.unique(np.quantile(known, np.linspace(0, 1, BINS + 1))[1:-1])
    values, counts = np.unique(known, return_counts=True)
    heavy = values[counts >= len(known) / (2 * BINS)]
    return np.unique(np.concatenate([edges, heavy, np.nextafter(heavy, np.inf)]))


def numeric_profile(values: pd.Series, outside_bins: bool = True) -> dict:
    """Reference of a numeric column: percentiles, bin edges, the share per bin, and its range
    (values outside it get bins of their own unless `outside_bins` is False)."""
    x = numeric(values)
    known = x[~np.isnan(x)]
    null_share = float(1 - len(known) / len(x)) if len(x) else 0.0
    if not len(known):
        return {"kind": "numeric", "quantiles": [], "edges": [], "shares": [],
                "null_share": null_share, "range": None}
    quantiles = np.quantile(known, np.linspace(0, 1, QUANTILES))
    edges = _edges(known)
    shares = _bin_shares(known, edges) * (1 - null_share)
    return {
        "kind": "numeric",
        "quantiles": [float(q) for q in quantiles],
        "edges": [float(e) for e in edges],
        "shares": [float(s) for s in shares],
        "null_share": null_share,
        "range": [float(known.min()), float(known.max())] if outside_bins else None,
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


def _all_edges(profile: dict) -> np.ndarray:
    """The profile's bin edges, with the two outside-the-range bins when it has its range."""
    edges = np.asarray(profile["edges"], dtype=float)
    if profile.get("range"):
        low, high = profile["range"]
        edges = np.concatenate([[low], edges, [np.nextafter(high, np.inf)]])
    return edges


def expected_shares(profile: dict) -> np.ndarray:
    """The reference's share per bin, in the order `bin_index` numbers them (null last)."""
    if profile["kind"] == "categorical":
        return np.asarray(list(profile["shares"].values()), dtype=float)
    inner = np.asarray(profile["shares"], dtype=float)
    if not len(inner):
        inner = np.zeros(len(profile["edges"]) + 1)
    if profile.get("range"):
        inner = np.concatenate([[0.0], inner, [0.0]])
    return np.append(inner, profile["null_share"])


def bin_index(profile: dict, values: pd.Series) -> np.ndarray:
    """Each value's bin in the reference: numbers by the fixed edges (missing values last),
    categories by name (unseen ones pooled)."""
    if profile["kind"] == "categorical":
        names = {name: i for i, name in enumerate(profile["shares"])}
        text = values.astype("string").fillna(NULL)
        return text.map(names).fillna(names[OTHER]).to_numpy(dtype=np.int64)
    x = numeric(values)
    edges = _all_edges(profile)
    index = np.searchsorted(edges, x, side="right")
    index[np.isnan(x)] = len(edges) + 1
    return index


def _shares(index: np.ndarray, bins: int) -> np.ndarray:
    counts = np.bincount(index, minlength=bins).astype(float)
    return counts / max(counts.sum(), 1.0)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: Σ (a − e) · ln(a / e) over the same bins."""
    e = np.clip(np.asarray(expected, dtype=float), EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def feature_psi(profile: dict, values: pd.Series) -> float:
    """PSI of the values against the reference's fixed bins (or category shares)."""
    expected = expected_shares(profile)
    return psi(expected, _shares(bin_index(profile, values), len(expected)))


numeric_psi = feature_psi
categorical_psi = feature_psi


def outside_share(profile: dict, values: pd.Series) -> float | None:
    """Share of the known values outside the reference's range (None for a category or a
    profile without its range)."""
    if profile["kind"] != "numeric" or not profile.get("range"):
        return None
    x = numeric(values)
    known = x[~np.isnan(x)]
    low, high = profile["range"]
    return float(np.mean((known < low) | (known > high))) if len(known) else 0.0


def ks_test(profile: dict, values: pd.Series) -> tuple[float | None, float | None]:
    """One-sample KS of the day's values against the reference percentiles: (D, p-value)."""
    x = numeric(values)
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
