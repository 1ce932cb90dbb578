"""Drift: how far a scored window's inputs and predictions are from what the model was trained on.

A model carries a reference profile of its training rows, recorded when it is trained: fixed bins
per numeric feature (deciles; a value holding half a decile or more gets a bin of its own; values
outside the training range fall in bins of their own), the share of each category, and the bins
of its own predictions on the validation window.

Thresholds are learned from the reference's own variability. Every window of `window_days`
consecutive training days (a week by default, sliding by a day, as the monitor's window does) is
compared with the rest of the training rows, over the reference's bins: its PSI, and for a number
the share of its values outside the range of the rest. A feature's threshold for each statistic
is the largest value the windows reached plus the distance from their median to that largest
(`threshold`). One multivariate signal: a small LightGBM that tries to tell a window's rows from
a sample of the reference rows; its cross-validated AUC gets a threshold learned the same way
from up to 30 training windows, each against the sample rows of the other days.

At monitoring, the trailing window is compared with the whole reference the same way, and each
statistic alarms when it lies beyond its threshold. Profiles saved before thresholds existed, or
from a training period shorter than `MIN_WINDOWS` windows (six weeks), keep the fixed rule (PSI ≥
0.2 and, for a number, KS rejecting at 1%). Plain numpy, pandas and LightGBM; no Dagster.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import stats

from unified_assets.lib.models.evaluation import auc

QUANTILES = 101  # percentiles kept per numeric feature: KS's reference distribution
BINS = 10  # PSI bins per numeric feature: the reference deciles
EPS = 1e-4  # share given to an empty bin so that PSI stays finite
OTHER = "__other__"
NULL = "__null__"

MIN_WINDOWS = 6
"""Non-overlapping windows the training period must hold for thresholds to be learned. Fewer
(a 4-week reference let 6.9% of held-out feature-days alarm and 12.5% of days drift:
`bench/bench_drift.py --weeks 4 --min-windows 4`): the fixed rule applies, since so short a
reference cannot say how much it varies from week to week."""
MARGIN = 1.0
"""threshold = largest window statistic + MARGIN × (largest − median): room for the week no
window saw, scaled by how much the windows spread."""
MIN_OUTSIDE_SHARE = 0.01
"""A window needs at least this share of a feature's values outside the training range to alarm
on it: a handful of new extremes is weather, a share of them is a new unit or a broken sensor."""
STABLE_PSI = 0.1
"""The classifier watches the features whose median week moves less than this (the usual "no
significant change" line of PSI). Weather and trailing delay rates move more: they let it tell
any week from any other (AUC ≈ 1 for every training week), so they are watched one by one."""
SAMPLE_ROWS = 3_000
"""Reference rows kept beside the profile for the multivariate signal."""
CLASSIFIER_ROWS = 1_500
"""Rows per side (window and reference) the classifier sees: ~0.04 s a judgement."""
CLASSIFIER_FOLDS = 3
CLASSIFIER_ROUNDS = 20
CLASSIFIER_PARAMS = {
    "objective": "binary", "num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 20,
    "max_bin": 63, "num_threads": 1, "deterministic": True, "force_row_wise": True,
    "verbose": -1, "seed": 7,
}  # fmt: skip
MAX_CLASSIFIER_WINDOWS = 30
"""At most this many training windows (evenly spread) calibrate the classifier (~0.05 s each)."""


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

    Learned thresholds (`calibrated` rule): a feature alarms when its PSI or its share of values
    outside the training range lies beyond its threshold; the day drifts when the multivariate
    AUC lies beyond its threshold, or at least `alarm_share` of the watched features alarm, or
    the predictions' PSI reaches `prediction_psi`. Without them (`fixed` rule: older profiles,
    short references), a feature drifts when its PSI reaches `psi_threshold` (and KS rejects at
    `ks_alpha` for a number), and the day when `feature_share` of them drift or the predictions'
    PSI reaches `prediction_psi`.
    """

    window_days: int = 7  # the settings resource's drift_window_days
    psi_threshold: float = 0.2  # fixed rule: the usual "significant shift" line for PSI
    ks_alpha: float = 0.01  # fixed rule: a numeric feature drifts only if KS also rejects
    # Fixed rule: a day drifts if half the watched features drift (a week of per-origin delay
    # rates always looks shifted against a 90-day reference, so a quarter would fire weekly)
    feature_share: float = 0.5
    # Calibrated rule: each feature alarms on a few % of held-out weeks, and weather features
    # move together; a fifth of them at once is more than the training weeks did.
    alarm_share: float = 0.2
    prediction_psi: float = 0.2  # either rule: the predictions' PSI reaching this

    def __post_init__(self):
        if self.window_days < 1:
            raise ValueError(f"the drift window must be at least one day, not {self.window_days}")


# -------------------------------------------------------------------------------- profiles


def _numeric(values: pd.Series) -> np.ndarray:
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
    x = _numeric(values)
    known = x[~np.isnan(x)]
    null_share = float(1 - len(known) / len(x)) if len(x) else 0.0
    if not len(known):
        return {"kind": "numeric", "quantiles": [], "edges": [], "shares": [],
                "null_share": null_share, "range": None}  # fmt: skip
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


def _expected(profile: dict) -> np.ndarray:
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
    x = _numeric(values)
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
    expected = _expected(profile)
    return psi(expected, _shares(bin_index(profile, values), len(expected)))


numeric_psi = feature_psi
categorical_psi = feature_psi


def outside_share(profile: dict, values: pd.Series) -> float | None:
    """Share of the known values outside the reference's range (None for a category or a
    profile without its range)."""
    if profile["kind"] != "numeric" or not profile.get("range"):
        return None
    x = _numeric(values)
    known = x[~np.isnan(x)]
    low, high = profile["range"]
    return float(np.mean((known < low) | (known > high))) if len(known) else 0.0


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


# ----------------------------------------------------------------------------- calibration


def threshold(window_statistics, floor: float = 0.0) -> float:
    """The alarm line learned from the reference's windows: the largest statistic plus MARGIN
    times its distance from the median, and at least `floor`."""
    values = np.asarray(window_statistics, dtype=float)
    top = float(values.max())
    return max(top + MARGIN * (top - float(np.median(values))), floor)


def watched(profile: dict) -> list[str]:
    """The features a reference watches: all but the calendar ones."""
    return [name for name in profile["features"] if name not in CALENDAR_FEATURES]


def day_rank(dates: pd.Series) -> np.ndarray:
    """Each row's day, numbered 0, 1, ... over the days that have rows."""
    day = pd.to_datetime(pd.Series(dates)).dt.normalize()
    return day.rank(method="dense").to_numpy(dtype=np.int64) - 1


def chunks(dates: pd.Series, days: int) -> np.ndarray:
    """Each row's week (non-overlapping runs of `days` days that have rows, from the first);
    -1 for the rows of the last, incomplete run."""
    rank = day_rank(dates)
    whole = (int(rank.max()) + 1) // days if len(rank) else 0
    return np.where(rank // days < whole, rank // days, -1)


def _sliding_psi(index: np.ndarray, rank: np.ndarray, bins: int, days: int) -> np.ndarray:
    """PSI of every window of `days` consecutive days against the rest of the rows."""
    per_day = np.bincount(rank * bins + index, minlength=(rank.max() + 1) * bins)
    cumulative = np.vstack([np.zeros(bins), np.cumsum(per_day.reshape(-1, bins), axis=0)])
    own = cumulative[days:] - cumulative[:-days]
    rest = cumulative[-1] - own
    a = np.clip(own / np.maximum(own.sum(axis=1, keepdims=True), 1), EPS, None)
    e = np.clip(rest / np.maximum(rest.sum(axis=1, keepdims=True), 1), EPS, None)
    return np.sum((a - e) * np.log(a / e), axis=1)


def _sliding_outside(x: np.ndarray, rank: np.ndarray, days: int) -> np.ndarray:
    """Share of every window's known values outside the range of the rest of the rows."""
    known = ~np.isnan(x)
    x, rank = x[known], rank[known]
    order = np.argsort(rank, kind="stable")
    x, rank = x[order], rank[order]
    n_days = int(rank.max()) + 1 if len(rank) else 0
    if n_days <= days:
        return np.zeros(0)
    starts = np.searchsorted(rank, np.arange(n_days + 1))
    low = np.full(n_days, np.inf)
    high = np.full(n_days, -np.inf)
    np.minimum.at(low, rank, x)
    np.maximum.at(high, rank, x)
    low_before = np.concatenate([[np.inf], np.minimum.accumulate(low)])
    low_after = np.concatenate([np.minimum.accumulate(low[::-1])[::-1], [np.inf]])
    high_before = np.concatenate([[-np.inf], np.maximum.accumulate(high)])
    high_after = np.concatenate([np.maximum.accumulate(high[::-1])[::-1], [-np.inf]])
    shares = []
    for s in range(n_days - days + 1):
        window = x[starts[s]:starts[s + days]]
        rest_low = min(low_before[s], low_after[s + days])
        rest_high = max(high_before[s], high_after[s + days])
        shares.append(np.mean((window < rest_low) | (window > rest_high)) if len(window) else 0)
    return np.asarray(shares, dtype=float)


def calibrate_features(profiles: dict, frame: pd.DataFrame, rank: np.ndarray,
                       days: int) -> dict:  # fmt: skip
    """Per watched feature: the PSI (and for a number the share outside the range) of every
    `days`-day window against the rest of the reference, summed up, with the thresholds."""
    learned = {}
    for name, profile in profiles.items():
        if name in CALENDAR_FEATURES:
            continue
        values = _sliding_psi(bin_index(profile, frame[name]), rank, len(_expected(profile)),
                              days)  # fmt: skip
        entry = {"threshold": threshold(values), "median": float(np.median(values)),
                 "max": float(values.max()), "windows": len(values)}  # fmt: skip
        if profile["kind"] == "numeric" and profile.get("range"):
            outside = _sliding_outside(_numeric(frame[name]), rank, days)
            if len(outside):
                entry["outside_threshold"] = threshold(outside, MIN_OUTSIDE_SHARE)
                entry["outside_max"] = float(outside.max())
        learned[name] = entry
    return learned


# --------------------------------------------------------------------- multivariate signal


def _design(frames: list[pd.DataFrame], features: list[str],
            categorical: set[str]) -> list[np.ndarray]:  # fmt: skip
    """The frames as float matrices with one coding of each categorical across all of them."""
    columns = []
    for name in features:
        if name in categorical:
            joined = pd.concat([f[name].astype("string") for f in frames], ignore_index=True)
            codes = pd.Categorical(joined).codes.astype(float)
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(np.concatenate([_numeric(f[name]) for f in frames]))
    matrix = np.column_stack(columns)
    return np.split(matrix, np.cumsum([len(f) for f in frames])[:-1])


def _subsample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed)


def classifier_auc(reference: pd.DataFrame, current: pd.DataFrame, features: list[str],
                   categorical: list[str], rows: int = CLASSIFIER_ROWS, seed: int = 0
                   ) -> float | None:  # fmt: skip
    """Cross-validated AUC of a small LightGBM telling `current` rows from `reference` rows
    (each side subsampled to `rows`): 0.5 when they look alike, 1 when every row gives itself
    away. None when either side is too small to tell."""
    ref, cur = _subsample(reference, rows, seed), _subsample(current, rows, seed + 1)
    if not features or min(len(ref), len(cur)) < 10 * CLASSIFIER_FOLDS:
        return None
    x_ref, x_cur = _design([ref, cur], features, set(categorical))
    x = np.vstack([x_ref, x_cur])
    y = np.concatenate([np.zeros(len(x_ref)), np.ones(len(x_cur))])
    folds = np.random.default_rng(seed).permutation(len(y)) % CLASSIFIER_FOLDS
    categories = [i for i, name in enumerate(features) if name in categorical]
    full = lgb.Dataset(x, y, categorical_feature=categories, free_raw_data=False,
                       params={"max_bin": CLASSIFIER_PARAMS["max_bin"], "verbose": -1})  # fmt: skip
    full.construct()
    scores = np.zeros(len(y))
    for k in range(CLASSIFIER_FOLDS):
        booster = lgb.train(CLASSIFIER_PARAMS, full.subset(np.flatnonzero(folds != k)),
                            num_boost_round=CLASSIFIER_ROUNDS,
                            keep_training_booster=True)  # no round trip through text  # fmt: skip
        scores[folds == k] = booster.predict(x[folds == k])
    return auc(y, scores)


def calibrate_classifier(frame: pd.DataFrame, sample: pd.DataFrame, rank: np.ndarray,
                         days: int, features: list[str], categorical: list[str]
                         ) -> dict | None:  # fmt: skip
    """The classifier's AUC for windows of `days` training days (up to MAX_CLASSIFIER_WINDOWS,
    evenly spread over every start day), each against the sample rows of the other days, and
    the threshold learned from them."""
    starts = np.arange(int(rank.max()) - days + 2)
    if len(starts) > MAX_CLASSIFIER_WINDOWS:
        starts = starts[np.linspace(0, len(starts) - 1, MAX_CLASSIFIER_WINDOWS).round().astype(int)]
    values = []
    for start in starts:
        inside = (rank >= start) & (rank < start + days)
        rest = sample[(sample["_day"] < start) | (sample["_day"] >= start + days)]
        value = classifier_auc(rest, frame[inside], features, categorical, seed=int(start))
        if value is not None:
            values.append(value)
    if len(values) < MIN_WINDOWS:
        return None
    return {"threshold": min(threshold(values), 1.0), "median": float(np.median(values)),
            "max": float(max(values)), "windows": len(values)}  # fmt: skip


# -------------------------------------------------------------------------------- reference


def reference_profile(frame: pd.DataFrame, features: list[str], categorical: list[str],
                      predictions: np.ndarray) -> dict:  # fmt: skip
    """What a model was trained on, kept beside it: one profile per feature and one for its
    predictions on the validation window (no learned thresholds: see `build_reference`)."""
    profiles = {
        name: categorical_profile(frame[name]) if name in categorical
        else numeric_profile(frame[name])
        for name in features
    }  # fmt: skip
    # The predictions keep the fixed rule's bins: no outside-the-range bins.
    return {"rows": len(frame), "features": profiles,
            "prediction": numeric_profile(pd.Series(predictions), outside_bins=False)}  # fmt: skip


def build_reference(frame: pd.DataFrame, features: list[str], categorical: list[str],
                    predictions: np.ndarray, dates: pd.Series, window_days: int,
                    sample_rows: int = SAMPLE_ROWS
                    ) -> tuple[dict, pd.DataFrame | None]:  # fmt: skip
    """The reference profile with thresholds learned from its `window_days`-day windows, and the
    sample of reference rows the multivariate signal compares with (None, and no thresholds,
    when the training period holds fewer than MIN_WINDOWS non-overlapping windows)."""
    reference = reference_profile(frame, features, categorical, predictions)
    rank = day_rank(dates)
    week = chunks(dates, window_days)
    if len(np.unique(week[week >= 0])) < MIN_WINDOWS:
        return reference, None
    learned = calibrate_features(reference["features"], frame, rank, window_days)
    stable = [n for n, entry in learned.items() if entry["median"] < STABLE_PSI]
    kept = [c for c in categorical if c in stable]
    sample = _subsample(frame[stable].assign(_day=rank), sample_rows, seed=0).sort_index()
    reference["calibration"] = {
        "window_days": window_days,
        "windows": int(len(np.unique(week[week >= 0]))),
        "features": learned,
        "multivariate": calibrate_classifier(frame, sample, rank, window_days, stable, kept),
        "classifier_features": stable,
        "classifier_categorical": kept,
        "rule": f"threshold = max + {MARGIN:g} x (max - median) of the windows' statistics; "
        f"outside share at least {MIN_OUTSIDE_SHARE:g}",
    }
    return reference, sample.reset_index(drop=True)


SAMPLE = "_sample"
"""Key under which whoever loads a reference attaches its sample rows (a DataFrame)."""


# ----------------------------------------------------------------------------- monitoring


def calibrated(reference: dict, policy: DriftPolicy) -> bool:
    """Does the reference carry thresholds learned on windows as long as the policy's?"""
    calibration = reference.get("calibration") or {}
    return calibration.get("window_days") == policy.window_days


def feature_drift(reference: dict, frame: pd.DataFrame, policy: DriftPolicy,
                  full_window: bool = True) -> list[dict]:  # fmt: skip
    """One row per watched feature: its statistic (PSI against the reference bins) and the
    threshold it is held to, the share outside the training range with its threshold, for a
    number under the fixed rule KS, and whether it alarmed.

    Calibrated rule: alarms when the PSI or the outside share lies beyond its learned threshold,
    and only on a full window (the thresholds were learned on windows that long: `partial`
    otherwise). Fixed rule: PSI ≥ `psi_threshold`, and KS rejecting for a number.
    """
    use_learned = calibrated(reference, policy)
    rows = []
    for name in watched(reference):
        if name not in frame.columns:
            continue
        profile = reference["features"][name]
        ks = (ks_test(profile, frame[name]) if profile["kind"] == "numeric" and not use_learned
              else (None, None))  # fmt: skip
        rows.append(feature_row(reference, name, feature_psi(profile, frame[name]),
                                outside_share(profile, frame[name]), ks, policy,
                                full_window))  # fmt: skip
    return rows


def feature_row(reference: dict, name: str, value: float, outside: float | None,
                ks: tuple[float | None, float | None], policy: DriftPolicy,
                full_window: bool) -> dict:  # fmt: skip
    """A feature's verdict on one window from its statistics (`feature_drift`'s rows)."""
    entry = (reference.get("calibration") or {}).get("features", {}).get(name, {})
    ks_stat, ks_p = ks
    if calibrated(reference, policy) and entry:
        line, rule = entry["threshold"], "calibrated" if full_window else "partial"
        outside_line = entry.get("outside_threshold")
        beyond = value > line or (outside_line is not None and outside is not None
                                  and outside > outside_line)  # fmt: skip
        alarmed = full_window and beyond
    else:
        line, outside_line, rule = policy.psi_threshold, None, "fixed"
        alarmed = value >= line and (reference["features"][name]["kind"] == "categorical"
                                     or (ks_p is not None and ks_p < policy.ks_alpha))
    return {"feature": name, "kind": reference["features"][name]["kind"], "psi": value,
            "statistic": value, "threshold": line, "outside_share": outside,
            "outside_threshold": outside_line, "ks_statistic": ks_stat, "ks_pvalue": ks_p,
            "alarmed": bool(alarmed), "drifted": bool(alarmed), "rule": rule}  # fmt: skip


def _window_sums(per_day: np.ndarray, ends: np.ndarray, days: int) -> np.ndarray:
    """Sums over the `days` day-ranks ending with each of `ends` (rows of `per_day`)."""
    cumulative = np.vstack([np.zeros((1, per_day.shape[1])), np.cumsum(per_day, axis=0)])
    return cumulative[ends + 1] - cumulative[np.maximum(ends + 1 - days, 0)]


def sliding_statistics(reference: dict, frame: pd.DataFrame, rank: np.ndarray,
                       ends: np.ndarray, days: int) -> dict[str, tuple]:
    """For every watched feature, in one pass over the rows: the PSI and the share outside the
    training range of each window of `days` day-ranks ending with each of `ends` (rows ranked
    by `rank`). The same statistics as `feature_psi` and `outside_share` on each window."""
    n_days = int(max(rank.max(initial=-1), ends.max(initial=-1))) + 1
    found = {}
    for name in watched(reference):
        if name not in frame.columns:
            continue
        profile = reference["features"][name]
        expected = np.clip(_expected(profile), EPS, None)
        bins = len(expected)
        counts = np.bincount(rank * bins + bin_index(profile, frame[name]),
                             minlength=n_days * bins).reshape(n_days, bins)  # fmt: skip
        windows = _window_sums(counts, ends, days)
        actual = np.clip(windows / np.maximum(windows.sum(axis=1, keepdims=True), 1), EPS, None)
        psis = np.sum((actual - expected) * np.log(actual / expected), axis=1)
        outside = None
        if profile["kind"] == "numeric" and profile.get("range"):
            x = _numeric(frame[name])
            low, high = profile["range"]
            known = ~np.isnan(x)
            flags = np.column_stack([known & ((x < low) | (x > high)), known]).astype(float)
            per_day = np.zeros((n_days, 2))
            np.add.at(per_day, rank, flags)
            sums = _window_sums(per_day, ends, days)
            outside = sums[:, 0] / np.maximum(sums[:, 1], 1)
        found[name] = (psis, outside)
    return found


def multivariate(reference: dict, frame: pd.DataFrame, policy: DriftPolicy
                 ) -> tuple[float | None, float | None]:  # fmt: skip
    """The window's classifier AUC against the reference sample, and its threshold; (None,
    None) for a reference without a learned threshold or without its sample attached."""
    calibration = reference.get("calibration") or {}
    learned = calibration.get("multivariate")
    sample = reference.get(SAMPLE)
    if not calibrated(reference, policy) or not learned or sample is None:
        return None, None
    names = [n for n in calibration["classifier_features"] if n in frame.columns]
    value = classifier_auc(sample, frame, names, calibration["classifier_categorical"])
    return value, learned["threshold"]


PARALLEL_WINDOWS = 60
"""From this many windows on (a backfill), `multivariate_windows` spreads them over processes:
a worker's start (~2 s) is worth it for more than ~40 classifiers."""


def multivariate_windows(reference: dict, rows: pd.DataFrame, windows: list[tuple[int, int]],
                         policy: DriftPolicy, workers: int = 1) -> list[tuple]:  # fmt: skip
    """The multivariate (AUC, threshold) of each window `rows.iloc[lo:hi]` against the
    reference, as `multivariate`. With `workers` > 1 and at least PARALLEL_WINDOWS windows, in
    that many fresh interpreters (LightGBM is not safe to train from several threads at once,
    nor in a process forked from one that trained), each given contiguous windows and only the
    rows and columns they read: the same values."""
    calibration = reference.get("calibration") or {}
    if (len(windows) < PARALLEL_WINDOWS or workers < 2 or not calibrated(reference, policy)
            or not calibration.get("multivariate") or reference.get(SAMPLE) is None):
        return _multivariate_part(reference, rows, windows, policy)
    names = [n for n in calibration["classifier_features"] if n in rows.columns]
    parts = []
    for part in np.array_split(np.arange(len(windows)), workers):
        first, last = windows[part[0]][0], max(windows[i][1] for i in part)
        parts.append((reference, rows.iloc[first:last][names],
                      [(windows[i][0] - first, windows[i][1] - first) for i in part], policy))
    return [value for part in _in_interpreters(parts) for value in part]


def _multivariate_part(reference: dict, rows: pd.DataFrame, windows: list[tuple[int, int]],
                       policy: DriftPolicy) -> list[tuple]:  # fmt: skip
    return [multivariate(reference, rows.iloc[lo:hi], policy) for lo, hi in windows]


def _in_interpreters(parts: list[tuple]) -> list[list]:
    """`_multivariate_part` of each argument tuple, each in a fresh `python -m
    unified_assets.lib.monitoring.drift` at the same time; arguments and results go through its pipes."""
    # One OpenMP/BLAS thread a worker (set by `env`, the rest inherited): two workers whose
    # pools spin on both cores are slower than one worker alone.
    command = ["env", "OMP_NUM_THREADS=1", sys.executable, "-W", "ignore", "-m", __name__]
    workers = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
               for _ in parts]  # fmt: skip
    try:
        for worker, part in zip(workers, parts, strict=True):
            worker.stdin.write(pickle.dumps(part))
            worker.stdin.close()
        results = []
        for worker in workers:
            out = worker.stdout.read()
            if worker.wait() != 0:
                raise RuntimeError(f"a drift worker failed (exit {worker.returncode})")
            results.append(pickle.loads(out))  # our own worker's answer
        return results
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()


def day_drift(reference: dict, frame: pd.DataFrame, predictions: np.ndarray,
              policy: DriftPolicy, full_window: bool = True
              ) -> tuple[dict, list[dict]]:  # fmt: skip
    """A scored window's drift summary and its per-feature rows.

    `frame` holds the window's rows, `predictions` what the reference's model predicted in it.
    Calibrated rule: the day drifts when the multivariate AUC lies beyond its threshold, or at
    least `alarm_share` of the watched features alarm, or the predictions' PSI reaches
    `prediction_psi`; nothing but the predictions' PSI alarms on a partial window. Fixed rule:
    `feature_share` of the features drift, or the predictions' PSI reaches `prediction_psi`.
    """
    rows = feature_drift(reference, frame, policy, full_window)
    prediction_psi = (feature_psi(reference["prediction"], pd.Series(predictions))
                      if len(predictions) else None)  # fmt: skip
    auc_value, auc_line = multivariate(reference, frame, policy) if full_window else (None, None)
    return verdict(reference, rows, prediction_psi, auc_value, auc_line, policy, len(frame),
                   full_window), rows  # fmt: skip


def verdict(reference: dict, rows: list[dict], prediction_psi: float | None,
            auc_value: float | None, auc_line: float | None, policy: DriftPolicy,
            n_rows: int, full_window: bool) -> dict:  # fmt: skip
    """A window's drift summary from its feature rows, its predictions' PSI and the
    multivariate AUC (`day_drift`'s rule)."""
    alarmed = [r["feature"] for r in rows if r["alarmed"]]
    share = len(alarmed) / len(rows) if rows else 0.0
    use_learned = calibrated(reference, policy)
    needed = policy.alarm_share if use_learned else policy.feature_share
    reasons = []
    if auc_value is not None and auc_value > auc_line:
        reasons.append(f"multivariate AUC {auc_value:.3f} > {auc_line:.3f}")
    if rows and share >= needed:
        reasons.append(f"{len(alarmed)} of {len(rows)} features alarm")
    if prediction_psi is not None and prediction_psi >= policy.prediction_psi:
        reasons.append(f"prediction PSI {prediction_psi:.2f}")
    top = sorted(rows, key=lambda r: r["statistic"] / max(r["threshold"], EPS), reverse=True)
    return {
        "rows": n_rows,
        "rule": ("calibrated" if full_window else "partial") if use_learned else "fixed",
        "prediction_psi": prediction_psi,
        "max_feature_psi": max((r["psi"] for r in rows), default=0.0),
        "drifted_features": len(alarmed),
        "drifted_share": share,
        "alarmed_features": alarmed,
        "top_features": [f"{r['feature']}={r['statistic']:.3g}/{r['threshold']:.3g}"
                         for r in top[:3]],  # fmt: skip
        "multivariate_auc": auc_value,
        "multivariate_threshold": auc_line,
        "reasons": reasons,
        "is_drift": bool(reasons),
    }


if __name__ == "__main__":  # a worker of `_in_interpreters`
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever else writes to stdout (LightGBM's C++ included) goes to stderr
    task = pickle.load(sys.stdin.buffer)
    answer.write(pickle.dumps(_multivariate_part(*task)))
    answer.close()
