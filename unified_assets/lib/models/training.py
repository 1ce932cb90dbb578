"""Training: time-based splits from a feature table, LightGBM with native categoricals,
early stopping on the validation window, and a seeded search within a budget."""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass, field
from datetime import date

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd

from unified_assets.lib.models.evaluation import auc, mae
from unified_assets.lib.models.specs import ModelSpec


def search_budget(spec: ModelSpec, override: int = 0) -> int:
    """Trials of the search: `override` when positive (a run's or the settings' budget), else
    the spec's own."""
    if override < 0:
        raise ValueError(f"a search budget must be a positive number of trials, not {override}")
    return override or spec.budget


def load_split(
    conn: duckdb.DuckDBPyConnection, spec: ModelSpec, window: tuple[date, date]
) -> pd.DataFrame:
    """Rows of the spec's feature table in [start, end) whose label is known, in key order."""
    columns = list(dict.fromkeys([*spec.key, *spec.features, *spec.slice_columns, spec.label]))
    if spec.baseline_column and spec.baseline_column not in columns:
        columns.append(spec.baseline_column)
    if spec.residual_of and spec.residual_of not in columns:
        columns.append(spec.residual_of)
    known = f"{spec.label} IS NOT NULL"
    if spec.residual_of:
        known += f" AND {spec.residual_of} IS NOT NULL"
    sql = (
        f"SELECT {', '.join(columns)} FROM {spec.table} WHERE {spec.date_column} >= $start "
        f"AND {spec.date_column} < $end AND {known} ORDER BY {', '.join(spec.key)}"
    )
    return conn.execute(sql, {"start": window[0], "end": window[1]}).df()


def without_days(spec: ModelSpec, frame: pd.DataFrame, days) -> pd.DataFrame:
    """The rows of `frame` not dated on one of `days` (ISO text), in the same order."""
    dated = pd.to_datetime(frame[spec.date_column]).dt.strftime("%Y-%m-%d")
    return frame[~dated.isin(set(days))].reset_index(drop=True)


def matrix(spec: ModelSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input: its features, categoricals as pandas categories, the rest as floats.

    LightGBM stores the training categories in the model text and maps scoring data onto
    them, so the same function serves training and scoring.
    """
    x = frame[list(spec.features)].copy()
    for column in spec.features:
        if column in spec.categorical:
            x[column] = x[column].astype("string").astype("category")
        else:
            x[column] = pd.to_numeric(x[column], errors="coerce").astype("float64")
    return x


def label(spec: ModelSpec, frame: pd.DataFrame) -> np.ndarray:
    """The true label (what metrics compare against)."""
    return frame[spec.label].astype(float).to_numpy()


def _offset(spec: ModelSpec, frame: pd.DataFrame) -> np.ndarray:
    """What the trees' output is added to: the residual base column, or 0. A row without its
    base gets NaN, so no prediction, rather than the bare correction."""
    if not spec.residual_of:
        return np.zeros(len(frame))
    return frame[spec.residual_of].astype(float).to_numpy()


@dataclass
class Trained:
    """A trained model and how it was found."""

    booster: lgb.Booster
    params: dict
    best_iteration: int
    valid_score: float
    trials: list[dict] = field(default_factory=list)
    text: str | None = None  # the model text as trained elsewhere (a Dask worker)

    def model_text(self) -> str:
        if self.text is not None:
            return self.text
        return self.booster.model_to_string(num_iteration=self.best_iteration)


def _trial_params(spec: ModelSpec, budget: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    trials = [dict(spec.params)]
    names = sorted(spec.search_space)
    seen = {tuple(sorted(trials[0].items()))}
    attempts = 0
    while len(trials) < budget and attempts < 100 * budget:
        attempts += 1
        candidate = dict(spec.params) | {n: rng.choice(spec.search_space[n]) for n in names}
        marker = tuple(sorted(candidate.items()))
        if marker not in seen:
            seen.add(marker)
            trials.append(candidate)
    return trials


def validation_score(spec: ModelSpec, y: np.ndarray, pred: np.ndarray) -> float:
    return auc(y, pred) if spec.task == "binary" else mae(y, pred)


def train(spec: ModelSpec, train_frame: pd.DataFrame, valid_frame: pd.DataFrame,
          seed: int = 13, budget: int = 0, weights: np.ndarray | None = None
          ) -> Trained:
    """Search `budget` parameter sets (the spec's base first), each early-stopped on the
    validation window; keep the best by the primary metric. Deterministic for the same inputs."""
    if train_frame.empty or valid_frame.empty:
        raise ValueError(
            f"{spec.name}: empty training ({len(train_frame)} rows) or validation "
            f"({len(valid_frame)} rows) window: build the features of those days first"
        )
    x_train = matrix(spec, train_frame)
    y_train = label(spec, train_frame) - _offset(spec, train_frame)
    x_valid, y_valid = matrix(spec, valid_frame), label(spec, valid_frame)
    valid_offset = _offset(spec, valid_frame)
    best: Trained | None = None
    trials = []
    for number, params in enumerate(trial_params(spec, budget, seed)):
        booster, full, record = fit_trial(spec, number, params, seed, x_train, y_train, weights,
                                          x_valid, y_valid, valid_offset)
        trials.append(record)
        if better(spec, record["valid_score"], best and best.valid_score):
            best = Trained(booster, full, record["best_iteration"], record["valid_score"])
    best.trials = trials
    return best


def refit(spec: ModelSpec, trained: Trained, frame: pd.DataFrame,
          weights: np.ndarray | None = None) -> str:
    """The model text of `trained`'s parameters and best number of rounds, trained again on
    `frame` (more days than it was early-stopped on): nothing left to stop on."""
    x, y, _ = inputs(spec, frame)
    data = lgb.Dataset(x, y, weight=weights, categorical_feature=list(spec.categorical))
    return lgb.train(trained.params, data, num_boost_round=trained.best_iteration).model_to_string()


def trial_params(spec: ModelSpec, budget: int = 0, seed: int = 13) -> list[dict]:
    """The parameter sets a search tries, in order: the spec's base first."""
    return _trial_params(spec, search_budget(spec, budget), seed)


def better(spec: ModelSpec, score: float, best: float | None) -> bool:
    """Whether a trial's validation score beats the best so far (ties keep the earlier)."""
    if best is None:
        return True
    return score > best if spec.task == "binary" else score < best


@functools.cache
def _one_tree() -> str:
    """A one-tree model: a handle on LightGBM's process-wide functions."""
    data = lgb.Dataset(np.arange(8.0).reshape(-1, 1), label=[0, 1] * 4,
                       params={"verbose": -1, "min_data_in_bin": 1})
    params = {"verbose": -1, "num_threads": 1, "min_data_in_leaf": 1}
    return lgb.train(params, data, num_boost_round=1).model_to_string()


def free_network() -> None:
    """Tear down a LightGBM network that a distributed training left set up here (on a Dask
    worker whose peer was killed): an ordinary training would otherwise try to reach the
    peers and fail on a broken socket. Nothing to do, and nearly free, anywhere else."""
    lgb.Booster(model_str=_one_tree()).free_network()


def fit_trial(spec: ModelSpec, number: int, params: dict, seed: int, x_train: pd.DataFrame,
              y_train: np.ndarray, weights: np.ndarray | None, x_valid: pd.DataFrame,
              y_valid: np.ndarray, valid_offset: np.ndarray
              ) -> tuple[lgb.Booster, dict, dict]:
    """One trial of the search: a LightGBM training early-stopped on the validation window.
    Returns the booster, the full parameters and the trial's record."""
    started = time.perf_counter()
    free_network()  # in this thread: LightGBM keeps its network per thread
    full = params | {"seed": seed, "deterministic": True, "force_row_wise": True,
                     "verbose": -1, "num_threads": 2}
    train_set = lgb.Dataset(x_train, y_train, weight=weights, free_raw_data=False,
                            categorical_feature=list(spec.categorical))
    valid_set = lgb.Dataset(x_valid, y_valid - valid_offset, reference=train_set)
    booster = lgb.train(
        full, train_set, num_boost_round=spec.num_boost_round, valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(spec.early_stopping_rounds, verbose=False)],
    )
    iteration = booster.best_iteration or booster.current_iteration()
    raw = booster.predict(x_valid, num_iteration=iteration)
    score = validation_score(spec, y_valid, raw + valid_offset)
    record = {
        "trial": number,
        "params": params,
        "best_iteration": iteration,
        "valid_score": score,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return booster, full, record


def inputs(spec: ModelSpec, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A frame as training reads it: the model's input, the target the trees learn (the label
    minus the residual base), and that base."""
    offset = _offset(spec, frame)
    return matrix(spec, frame), label(spec, frame) - offset, offset


def predict(booster: lgb.Booster, spec: ModelSpec, frame: pd.DataFrame) -> np.ndarray:
    """Scores for the frame's rows (a probability for a classifier)."""
    if frame.empty:
        return np.array([], dtype=float)
    return booster.predict(matrix(spec, frame)) + _offset(spec, frame)


def selected_features(booster: lgb.Booster) -> list[str]:
    """The recorded FEE rule: features the spec lists that carry non-zero gain in the model."""
    gains = booster.feature_importance(importance_type="gain")
    return [name for name, gain in zip(booster.feature_name(), gains, strict=True) if gain > 0]


def baseline(spec: ModelSpec, train_frame: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray:
    """The naive baseline each model must beat: a column of the frame (seasonal naive), or
    the training mean of the label per group (historical rate), else overall."""
    if spec.baseline_column:
        fallback = train_frame[spec.label].astype(float).mean()
        return frame[spec.baseline_column].astype(float).fillna(fallback).to_numpy()
    overall = train_frame[spec.label].astype(float).mean()
    if not spec.baseline_groups:
        return np.full(len(frame), overall)
    groups = list(spec.baseline_groups)
    rates = train_frame.groupby(groups, observed=True)[spec.label].mean().rename("_base")
    joined = frame[groups].merge(rates, left_on=groups, right_index=True, how="left")
    return joined["_base"].astype(float).fillna(overall).to_numpy()
