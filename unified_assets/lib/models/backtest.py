"""The simplest fixed alternative to the retraining loop: retrain on the 1st of every month.

A calendar policy trains, on the first day of each month, with the same training code and
budget as the platform's retraining, on the labelled history known that morning (the last
`CALENDAR_VALID_DAYS` early-stop it: it has no gate, so it holds out no test days), and
scores that month's rows with the model it got. Its realized
metric, its number of trainings and its training seconds are what the automatic loop must beat
in the same replay. Plain pandas/LightGBM over the feature tables; no Dagster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd

from unified_assets.lib.core.config import FIRST_DAY
from unified_assets.lib.models import training
from unified_assets.lib.models.specs import ModelSpec, Rolling

CALENDAR_VALID_DAYS = 14


@dataclass
class Schedule:
    """What a fixed schedule did: its predictions for the rows, and each training."""

    predictions: np.ndarray
    trainings: list[dict] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(t["seconds"] for t in self.trainings)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def month_starts(first: date, last: date) -> list[date]:
    """The first day of every month from `first`'s month to `last`'s."""
    months, day = [], date(first.year, first.month, 1)
    while day <= last:
        months.append(day)
        day = next_month(day)
    return months


def monthly_retraining(
    conn: duckdb.DuckDBPyConnection, spec: ModelSpec, rows: pd.DataFrame, day_column: str,
    rolling: Rolling, budget: int, held_out_days: int = 0, refit: bool = False,
) -> Schedule:
    """Predictions for `rows` (dated by `day_column`) from models retrained on the 1st of each
    month on what was known that morning: labels up to `label_lag_days` before the day.
    `rolling` gives the span and recency weights; validation is the `CALENDAR_VALID_DAYS`
    before the last `held_out_days` known days (0: the last days; the loop holds out 14 to
    test its challenger). `refit`: the model then trains again on every known day, with the
    parameters and the rounds early stopping chose."""
    days = pd.to_datetime(rows[day_column]).dt.date
    predictions = np.full(len(rows), np.nan)
    schedule = Schedule(predictions)
    for month in month_starts(min(days), max(days)):
        in_month = ((days >= month) & (days < next_month(month))).to_numpy()
        if not in_month.any():
            continue
        as_of = month - timedelta(days=1 + spec.label_lag_days)
        known_end = as_of + timedelta(days=1)
        valid_end = known_end - timedelta(days=held_out_days)
        valid_start = valid_end - timedelta(days=CALENDAR_VALID_DAYS)
        train_start = FIRST_DAY
        if rolling.train_days:
            train_start = max(FIRST_DAY, valid_start - timedelta(days=rolling.train_days))
        train = training.load_split(conn, spec, (train_start, valid_start))
        valid = training.load_split(conn, spec, (valid_start, valid_end))
        if train.empty or valid.empty:
            continue
        started = time.perf_counter()
        trained = training.train(spec, train, valid, budget=budget,
                                 weights=rolling.weights(train[spec.date_column], valid_start))
        text = trained.model_text()
        if refit:
            known = training.load_split(conn, spec, (train_start, known_end))
            text = training.refit(spec, trained, known,
                                  rolling.weights(known[spec.date_column], known_end))
        seconds = time.perf_counter() - started
        booster = lgb.Booster(model_str=text)  # as the platform saves it
        predictions[in_month] = training.predict(booster, spec, rows[in_month])
        schedule.trainings.append({"month": str(month)[:7], "as_of": str(as_of),
                                   "train_rows": len(train), "valid": [str(valid_start),
                                                                       str(valid_end)],
                                   "rounds": trained.best_iteration,
                                   "refit_rows": len(known) if refit else 0,
                                   "seconds": round(seconds, 3)})
    return schedule
