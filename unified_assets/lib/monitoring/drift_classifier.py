"""The multivariate drift signal: a small LightGBM that tries to tell a window's rows from a
sample of the reference rows, its cross-validated AUC, the threshold learned for it from up to
30 training windows, each against the sample rows of the other days, and the fresh interpreters
a backfill's windows are spread over (each a `python -m
unified_assets.lib.monitoring.drift_classifier`).

Part of the drift check (lib/monitoring/drift.py). Plain numpy, pandas and LightGBM.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import lightgbm as lgb
import numpy as np
import pandas as pd

from unified_assets.lib.models.evaluation import auc
from unified_assets.lib.monitoring.drift_calibration import MIN_WINDOWS, calibrated, threshold
from unified_assets.lib.monitoring.drift_policy import DriftPolicy
from unified_assets.lib.monitoring.drift_stats import numeric

CLASSIFIER_ROWS = 1_500
"""Rows per side (window and reference) the classifier sees: ~0.04 s a judgement."""
CLASSIFIER_FOLDS = 3
CLASSIFIER_ROUNDS = 20
CLASSIFIER_PARAMS = {
    "objective": "binary", "num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 20,
    "max_bin": 63, "num_threads": 1, "deterministic": True, "force_row_wise": True,
    "verbose": -1, "seed": 7,
}
MAX_CLASSIFIER_WINDOWS = 30
"""At most this many training windows (evenly spread) calibrate the classifier (~0.05 s each)."""


SAMPLE = "_sample"
"""Key under which whoever loads a reference attaches its sample rows (a DataFrame)."""


def _design(frames: list[pd.DataFrame], features: list[str],
            categorical: set[str]) -> list[np.ndarray]:
    """The frames as float matrices with one coding of each categorical across all of them."""
    columns = []
    for name in features:
        if name in categorical:
            joined = pd.concat([f[name].astype("string") for f in frames], ignore_index=True)
            codes = pd.Categorical(joined).codes.astype(float)
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(np.concatenate([numeric(f[name]) for f in frames]))
    matrix = np.column_stack(columns)
    return np.split(matrix, np.cumsum([len(f) for f in frames])[:-1])


def subsample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed)


def classifier_auc(reference: pd.DataFrame, current: pd.DataFrame, features: list[str],
                   categorical: list[str], rows: int = CLASSIFIER_ROWS, seed: int = 0
                   ) -> float | None:
    """Cross-validated AUC of a small LightGBM telling `current` rows from `reference` rows
    (each side subsampled to `rows`): 0.5 when they look alike, 1 when every row gives itself
    away. None when either side is too small to tell."""
    ref, cur = subsample(reference, rows, seed), subsample(current, rows, seed + 1)
    if not features or min(len(ref), len(cur)) < 10 * CLASSIFIER_FOLDS:
        return None
    x_ref, x_cur = _design([ref, cur], features, set(categorical))
    x = np.vstack([x_ref, x_cur])
    y = np.concatenate([np.zeros(len(x_ref)), np.ones(len(x_cur))])
    folds = np.random.default_rng(seed).permutation(len(y)) % CLASSIFIER_FOLDS
    categories = [i for i, name in enumerate(features) if name in categorical]
    full = lgb.Dataset(x, y, categorical_feature=categories, free_raw_data=False,
                       params={"max_bin": CLASSIFIER_PARAMS["max_bin"], "verbose": -1})
    full.construct()
    scores = np.zeros(len(y))
    for k in range(CLASSIFIER_FOLDS):
        booster = lgb.train(CLASSIFIER_PARAMS, full.subset(np.flatnonzero(folds != k)),
                            num_boost_round=CLASSIFIER_ROUNDS,
                            keep_training_booster=True)  # no round trip through text
        scores[folds == k] = booster.predict(x[folds == k])
    return auc(y, scores)


def calibrate_classifier(frame: pd.DataFrame, sample: pd.DataFrame, rank: np.ndarray,
                         days: int, features: list[str], categorical: list[str]
                         ) -> dict | None:
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
            "max": float(max(values)), "windows": len(values)}


def multivariate(reference: dict, frame: pd.DataFrame, policy: DriftPolicy
                 ) -> tuple[float | None, float | None]:
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
                         policy: DriftPolicy, workers: int = 1) -> list[tuple]:
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
                       policy: DriftPolicy) -> list[tuple]:
    return [multivariate(reference, rows.iloc[lo:hi], policy) for lo, hi in windows]


def _in_interpreters(parts: list[tuple]) -> list[list]:
    """`_multivariate_part` of each argument tuple, each in a fresh `python -m
    unified_assets.lib.monitoring.drift_classifier` at the same time; arguments and
    results go through its pipes."""
    # One OpenMP/BLAS thread a worker (set by `env`, the rest inherited): two workers whose
    # pools spin on both cores are slower than one worker alone.
    command = ["env", "OMP_NUM_THREADS=1", sys.executable, "-W", "ignore", "-m", __name__]
    workers = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
               for _ in parts]
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
                worker.wait()
            worker.stdout.close()  # the pipes go with the worker, whatever happened
            if not worker.stdin.closed:
                worker.stdin.close()


if __name__ == "__main__":  # a worker of `_in_interpreters`
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever else writes to stdout (LightGBM's C++ included) goes to stderr
    task = pickle.load(sys.stdin.buffer)
    answer.write(pickle.dumps(_multivariate_part(*task)))
    answer.close()
