"""Model evaluation: the metrics a reviewer asks for, against a naive baseline, by slice."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MIN_SLICE_ROWS = 200
"""Slices smaller than this are reported but not used for the worst-slice gap."""


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (ties share their rank); NaN when one class is absent."""
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    positives = y.sum()
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    y = np.asarray(y, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def precision_recall(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    y = np.asarray(y, dtype=bool)
    flagged = np.asarray(p) >= threshold
    tp = float((flagged & y).sum())
    precision = tp / flagged.sum() if flagged.sum() else float("nan")
    recall = tp / y.sum() if y.sum() else float("nan")
    return precision, recall


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The operating threshold: the probability cut that maximises F1 (chosen on validation)."""
    best, best_f1 = 0.5, -1.0
    for threshold in np.unique(np.quantile(p, np.linspace(0.05, 0.95, 91))):
        precision, recall = precision_recall(y, p, threshold)
        if precision + recall > 0 and not math.isnan(precision):
            f1 = 2 * precision * recall / (precision + recall)
            if f1 > best_f1:
                best, best_f1 = float(threshold), f1
    return best


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Mean predicted probability against the observed rate, per decile of prediction."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float)})
    frame["bin"] = pd.qcut(frame["p"], q=bins, labels=False, duplicates="drop")
    table = frame.groupby("bin").agg(
        rows=("y", "size"), predicted=("p", "mean"), observed=("y", "mean")
    )
    return [
        {"bin": int(b), "rows": int(r.rows), "predicted": round(float(r.predicted), 4),
         "observed": round(float(r.observed), 4)}
        for b, r in table.iterrows()
    ]


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y, dtype=float) - np.asarray(pred, dtype=float))))


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(
        np.sqrt(np.mean((np.asarray(y, dtype=float) - np.asarray(pred, dtype=float)) ** 2))
    )


def skill(error: float, baseline_error: float) -> float:
    """1 - error / baseline error, floored at 0 (V_val for regressors, docs/kpis.md)."""
    if not baseline_error or math.isnan(baseline_error):
        return 0.0
    return max(0.0, 1.0 - error / baseline_error)


def primary(task: str, y: np.ndarray, pred: np.ndarray) -> float:
    """AUC for a classifier (higher is better); MAE for a regressor or forecaster (lower)."""
    return auc(y, pred) if task == "binary" else mae(y, pred)


def metrics(task: str, y: np.ndarray, pred: np.ndarray, baseline: np.ndarray,
            threshold: float | None = None) -> dict:
    """Every metric of the task, the naive baseline's, and the skill over it."""
    if task == "binary":
        threshold = 0.5 if threshold is None else threshold
        precision, recall = precision_recall(y, pred, threshold)
        return {
            "auc": auc(y, pred),
            "log_loss": log_loss(y, pred),
            "brier": brier(y, pred),
            "threshold": threshold,
            "precision": precision,
            "recall": recall,
            "positive_rate": float(np.mean(y)),
            "baseline_auc": auc(y, baseline),
            "baseline_brier": brier(y, baseline),
            "calibration": calibration(y, pred),
            "rows": int(len(y)),
        }
    model_mae, base_mae = mae(y, pred), mae(y, baseline)
    return {
        "mae": model_mae,
        "rmse": rmse(y, pred),
        "baseline_mae": base_mae,
        "baseline_rmse": rmse(y, baseline),
        "skill": skill(model_mae, base_mae),
        "rows": int(len(y)),
    }


def slices(task: str, frame: pd.DataFrame, columns: tuple[str, ...], label: str,
           prediction: str = "prediction") -> tuple[list[dict], float, str]:
    """The primary metric per slice value, and the worst slice's gap to the whole.

    The gap is in the metric's own units, oriented so that bigger is worse: overall AUC minus
    the slice's, or the slice's MAE minus overall MAE divided by overall MAE.
    """
    overall = primary(task, frame[label].to_numpy(), frame[prediction].to_numpy())
    rows, worst_gap, worst = [], 0.0, ""
    for column in columns:
        for value, part in frame.groupby(column, observed=True):
            value_metric = primary(task, part[label].to_numpy(), part[prediction].to_numpy())
            if task == "binary":
                gap = overall - value_metric
            else:
                gap = (value_metric - overall) / overall if overall else 0.0
            rows.append({"column": column, "value": str(value), "rows": int(len(part)),
                         "metric": value_metric, "gap": gap})
            if len(part) >= MIN_SLICE_ROWS and not math.isnan(gap) and gap > worst_gap:
                worst_gap, worst = gap, f"{column}={value}"
    return rows, worst_gap, worst
