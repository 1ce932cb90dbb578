"""Drift thresholds learned from the reference's own variability: every window of `days`
consecutive training days (sliding by a day) is compared with the rest of the training rows,
over the reference's bins: its PSI, and for a number the share of its values outside the range
of the rest. A feature's threshold for each statistic is the largest value the windows reached
plus the distance from their median to that largest (`threshold`).

Part of the drift check (lib/monitoring/drift.py). Plain numpy and pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from unified_assets.lib.monitoring.drift_policy import DriftPolicy
from unified_assets.lib.monitoring.drift_stats import EPS, bin_index, expected_shares, numeric

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


# Features that are the calendar itself (one value per day): a day's weekday always differs
# from a training reference spread over every weekday, so they are not watched for drift.
CALENDAR_FEATURES = frozenset(
    {"day_of_week", "days_to_holiday", "target_day_of_week", "target_days_to_holiday", "month"}
)


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
                       days: int) -> dict:
    """Per watched feature: the PSI (and for a number the share outside the range) of every
    `days`-day window against the rest of the reference, summed up, with the thresholds."""
    learned = {}
    for name, profile in profiles.items():
        if name in CALENDAR_FEATURES:
            continue
        values = _sliding_psi(bin_index(profile, frame[name]), rank, len(expected_shares(profile)),
                              days)
        entry = {"threshold": threshold(values), "median": float(np.median(values)),
                 "max": float(values.max()), "windows": len(values)}
        if profile["kind"] == "numeric" and profile.get("range"):
            outside = _sliding_outside(numeric(frame[name]), rank, days)
            if len(outside):
                entry["outside_threshold"] = threshold(outside, MIN_OUTSIDE_SHARE)
                entry["outside_max"] = float(outside.max())
        learned[name] = entry
    return learned


def calibrated(reference: dict, policy: DriftPolicy) -> bool:
    """Does the reference carry thresholds learned on windows as long as the policy's?"""
    calibration = reference.get("calibration") or {}
    return calibration.get("window_days") == policy.window_days
