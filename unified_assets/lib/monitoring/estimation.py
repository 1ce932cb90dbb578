"""Performance before the labels arrive: a label-free estimate of a scored day's metric.

Classifier: confidence-based performance estimation (CBPE). When the model is trained, its
scores on the validation window are calibrated by isotonic regression (pool-adjacent-
violators): the map from a score to the rate of positives among the flights given that score.
The map (a few hundred knots of JSON) is saved beside the model. For a scored day, each flight
counts as a fraction p (its calibrated probability) of a positive and 1 - p of a negative, so
the expected confusion counts at every threshold give an expected ROC curve; its area (the
expected share of positive-negative pairs that the scores order correctly) is the estimated AUC.
The estimate holds while P(late | score) stays as it was on the validation window: it follows
shifts of the inputs, not a change of what a given score means (concept drift).

Regressors (arrival delay, departures forecaster): no estimate, for want of a sound method.
Direct loss estimation (a LightGBM model of |error| from the features and the prediction,
fitted on the validation window) was measured with bench/bench_estimation.py --regressor: over
2013's weeks its MAE estimate was off by 7.8 minutes on average, the validation MAE carried
forward by 4.6; the |error| model extrapolates badly into seasons it never saw. The
forecaster's validation window holds some forty rows, too few to fit one at all. Their verdict
waits for the labels.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from unified_assets.lib.core import artifacts
from unified_assets.lib.models.evaluation import auc

METHOD = "cbpe"
MIN_CALIBRATION_ROWS = 200  # fewer validation rows, or a single class: no calibration map


def isotonic_fit(score: np.ndarray, y: np.ndarray) -> dict:
    """The non-decreasing map from a score to the observed rate, fitted by pool-adjacent-
    violators on (score, 0/1 outcome) pairs; kept as knots for linear interpolation, flat
    beyond the ends (as scikit-learn's IsotonicRegression with out_of_bounds="clip")."""
    score = np.asarray(score, dtype=float)
    y = np.asarray(y, dtype=float)
    known = ~(np.isnan(score) | np.isnan(y))
    score, y = score[known], y[known]
    if not len(score):
        raise ValueError("isotonic calibration needs at least one scored row with its outcome")
    order = np.argsort(score, kind="stable")
    unique, first, counts = np.unique(score[order], return_index=True, return_counts=True)
    sums = np.add.reduceat(y[order], first)
    # One block per distinct score, merged with its left neighbour while out of order.
    values: list[float] = []
    weights: list[float] = []
    lows: list[int] = []
    for i, (total, count) in enumerate(zip(sums, counts, strict=True)):
        value, weight, low = total / count, float(count), i
        while values and values[-1] >= value:
            value = (values[-1] * weights[-1] + value * weight) / (weights[-1] + weight)
            weight += weights.pop()
            values.pop()
            low = lows.pop()
        values.append(value)
        weights.append(weight)
        lows.append(low)
    highs = [*(low - 1 for low in lows[1:]), len(unique) - 1]
    x, p = [], []
    for value, low, high in zip(values, lows, highs, strict=True):
        for edge in dict.fromkeys((low, high)):
            x.append(float(unique[edge]))
            p.append(round(float(value), 6))
    return {"x": x, "p": p, "rows": int(len(score))}


def isotonic_apply(calibration: dict, score: np.ndarray) -> np.ndarray:
    """Calibrated probabilities of the scores (NaN stays NaN)."""
    score = np.asarray(score, dtype=float)
    return np.interp(score, calibration["x"], calibration["p"])


def expected_auc(score: np.ndarray, p: np.ndarray) -> float:
    """The AUC to expect when flight i is late with probability p_i: the expected count of
    late-on-time pairs ordered correctly by the score (ties count half), over the expected
    count of such pairs; a flight is never paired with itself. NaN without both classes."""
    score = np.asarray(score, dtype=float)
    p = np.asarray(p, dtype=float)
    known = ~(np.isnan(score) | np.isnan(p))
    score, p = score[known], np.clip(p[known], 0.0, 1.0)
    if not len(score):
        return float("nan")
    unique, inverse = np.unique(score, return_inverse=True)
    positives = np.bincount(inverse, weights=p, minlength=len(unique))
    negatives = np.bincount(inverse, weights=1.0 - p, minlength=len(unique))
    itself = np.bincount(inverse, weights=p * (1.0 - p), minlength=len(unique))
    below = np.cumsum(negatives) - negatives  # negatives with a strictly lower score
    ordered = float(np.sum(positives * below) + 0.5 * np.sum(positives * negatives - itself))
    pairs = float(positives.sum() * negatives.sum() - itself.sum())
    return ordered / pairs if pairs > 0 else float("nan")


def fit_estimator(task: str, y: np.ndarray, prediction: np.ndarray) -> dict | None:
    """What the estimate needs, from a model's validation window (outcomes and the saved
    model's predictions): the calibration map for a classifier; None for the other tasks, or
    when the window is too small or has a single class."""
    if task != "binary":
        return None
    y = np.asarray(y, dtype=float)
    prediction = np.asarray(prediction, dtype=float)
    known = ~(np.isnan(y) | np.isnan(prediction))
    y, prediction = y[known], prediction[known]
    if len(y) < MIN_CALIBRATION_ROWS or len(np.unique(y)) < 2:
        return None
    calibration = isotonic_fit(prediction, y)
    return {
        "method": METHOD,
        "metric": "auc",
        "calibration": calibration,
        "validation": {
            "rows": int(len(y)),
            "positive_rate": round(float(y.mean()), 6),
            "auc": round(auc(y, prediction), 6),
            "estimated_auc": round(expected_auc(prediction,
                                                isotonic_apply(calibration, prediction)), 6),
        },
    }


def estimate(estimator: dict | None, prediction: np.ndarray) -> dict | None:
    """The estimated metric of a scored day from its predictions alone, or None (no estimator:
    a model trained before estimates existed, a regressor; or nothing to estimate)."""
    if not estimator or estimator.get("method") != METHOD:
        return None
    prediction = np.asarray(prediction, dtype=float)
    prediction = prediction[~np.isnan(prediction)]
    if not len(prediction):
        return None
    value = expected_auc(prediction, isotonic_apply(estimator["calibration"], prediction))
    if math.isnan(value):
        return None
    return {"metric": estimator["metric"], "method": METHOD, "value": value,
            "rows": int(len(prediction))}


def estimator_path(home: Path, sha256: str) -> Path:
    """`artifacts/models/<sha256>.estimator.json`, beside the model it belongs to."""
    return artifacts.metadata_path(home, sha256).with_suffix(".estimator.json")


def save_estimator(home: Path, sha256: str, estimator: dict | None) -> bool:
    """Store a model's estimator beside it, once (never rewritten); nothing for None."""
    if estimator is None:
        return False
    data = (json.dumps(estimator, indent=1, sort_keys=True) + "\n").encode("utf-8")
    return artifacts.write_new(estimator_path(home, sha256), data)


def load_estimator(home: Path, sha256: str) -> dict | None:
    """A model's estimator, or None when it has none (trained before estimates, a regressor)."""
    path = estimator_path(home, sha256)
    return json.loads(path.read_text("utf-8")) if path.exists() else None
