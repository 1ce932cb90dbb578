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

This module holds the policy, the reference built at training time and a window's verdict; the
per-feature profiles and statistics are in `drift_stats`, the thresholds' calibration in
`drift_calibration`, the multivariate classifier in `drift_classifier`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from unified_assets.lib.monitoring.drift_calibration import (
    MARGIN,
    MIN_OUTSIDE_SHARE,
    MIN_WINDOWS,
    calibrate_features,
    calibrated,
    chunks,
    day_rank,
    watched,
)
from unified_assets.lib.monitoring.drift_classifier import (
    calibrate_classifier,
    multivariate,
    subsample,
)
from unified_assets.lib.monitoring.drift_policy import DriftPolicy
from unified_assets.lib.monitoring.drift_stats import (
    EPS,
    bin_index,
    categorical_profile,
    expected_shares,
    feature_psi,
    ks_test,
    numeric,
    numeric_profile,
    outside_share,
)

STABLE_PSI = 0.1
"""The classifier watches the features whose median week moves less than this (the usual "no
significant change" line of PSI). Weather and trailing delay rates move more: they let it tell
any week from any other (AUC ≈ 1 for every training week), so they are watched one by one."""
SAMPLE_ROWS = 3_000
"""Reference rows kept beside the profile for the multivariate signal."""


# -------------------------------------------------------------------------------- reference


def reference_profile(frame: pd.DataFrame, features: list[str], categorical: list[str],
                      predictions: np.ndarray) -> dict:
    """What a model was trained on, kept beside it: one profile per feature and one for its
    predictions on the validation window (no learned thresholds: see `build_reference`)."""
    profiles = {
        name: categorical_profile(frame[name]) if name in categorical
        else numeric_profile(frame[name])
        for name in features
    }
    # The predictions keep the fixed rule's bins: no outside-the-range bins.
    return {"rows": len(frame), "features": profiles,
            "prediction": numeric_profile(pd.Series(predictions), outside_bins=False)}


def build_reference(frame: pd.DataFrame, features: list[str], categorical: list[str],
                    predictions: np.ndarray, dates: pd.Series, window_days: int,
                    sample_rows: int = SAMPLE_ROWS
                    ) -> tuple[dict, pd.DataFrame | None]:
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
    sample = subsample(frame[stable].assign(_day=rank), sample_rows, seed=0).sort_index()
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


# ----------------------------------------------------------------------------- monitoring


def feature_drift(reference: dict, frame: pd.DataFrame, policy: DriftPolicy,
                  full_window: bool = True) -> list[dict]:
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
              else (None, None))
        rows.append(feature_row(reference, name, feature_psi(profile, frame[name]),
                                outside_share(profile, frame[name]), ks, policy,
                                full_window))
    return rows


def feature_row(reference: dict, name: str, value: float, outside: float | None,
                ks: tuple[float | None, float | None], policy: DriftPolicy,
                full_window: bool) -> dict:
    """A feature's verdict on one window from its statistics (`feature_drift`'s rows)."""
    entry = (reference.get("calibration") or {}).get("features", {}).get(name, {})
    ks_stat, ks_p = ks
    if calibrated(reference, policy) and entry:
        line, rule = entry["threshold"], "calibrated" if full_window else "partial"
        outside_line = entry.get("outside_threshold")
        beyond = value > line or (outside_line is not None and outside is not None
                                  and outside > outside_line)
        alarmed = full_window and beyond
    else:
        line, outside_line, rule = policy.psi_threshold, None, "fixed"
        alarmed = value >= line and (reference["features"][name]["kind"] == "categorical"
                                     or (ks_p is not None and ks_p < policy.ks_alpha))
    return {"feature": name, "kind": reference["features"][name]["kind"], "psi": value,
            "statistic": value, "threshold": line, "outside_share": outside,
            "outside_threshold": outside_line, "ks_statistic": ks_stat, "ks_pvalue": ks_p,
            "alarmed": bool(alarmed), "drifted": bool(alarmed), "rule": rule}


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
        expected = np.clip(expected_shares(profile), EPS, None)
        bins = len(expected)
        counts = np.bincount(rank * bins + bin_index(profile, frame[name]),
                             minlength=n_days * bins).reshape(n_days, bins)
        windows = _window_sums(counts, ends, days)
        actual = np.clip(windows / np.maximum(windows.sum(axis=1, keepdims=True), 1), EPS, None)
        psis = np.sum((actual - expected) * np.log(actual / expected), axis=1)
        outside = None
        if profile["kind"] == "numeric" and profile.get("range"):
            x = numeric(frame[name])
            low, high = profile["range"]
            known = ~np.isnan(x)
            flags = np.column_stack([known & ((x < low) | (x > high)), known]).astype(float)
            per_day = np.zeros((n_days, 2))
            np.add.at(per_day, rank, flags)
            sums = _window_sums(per_day, ends, days)
            outside = sums[:, 0] / np.maximum(sums[:, 1], 1)
        found[name] = (psis, outside)
    return found


def day_drift(reference: dict, frame: pd.DataFrame, predictions: np.ndarray,
              policy: DriftPolicy, full_window: bool = True
              ) -> tuple[dict, list[dict]]:
    """A scored window's drift summary and its per-feature rows.

    `frame` holds the window's rows, `predictions` what the reference's model predicted in it.
    Calibrated rule: the day drifts when the multivariate AUC lies beyond its threshold, or at
    least `alarm_share` of the watched features alarm, or the predictions' PSI reaches
    `prediction_psi`; nothing but the predictions' PSI alarms on a partial window. Fixed rule:
    `feature_share` of the features drift, or the predictions' PSI reaches `prediction_psi`.
    """
    rows = feature_drift(reference, frame, policy, full_window)
    prediction_psi = (feature_psi(reference["prediction"], pd.Series(predictions))
                      if len(predictions) else None)
    auc_value, auc_line = multivariate(reference, frame, policy) if full_window else (None, None)
    return verdict(reference, rows, prediction_psi, auc_value, auc_line, policy, len(frame),
                   full_window), rows


def verdict(reference: dict, rows: list[dict], prediction_psi: float | None,
            auc_value: float | None, auc_line: float | None, policy: DriftPolicy,
            n_rows: int, full_window: bool) -> dict:
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
                         for r in top[:3]],
        "multivariate_auc": auc_value,
        "multivariate_threshold": auc_line,
        "reasons": reasons,
        "is_drift": bool(reasons),
    }
