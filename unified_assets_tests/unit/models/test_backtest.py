"""The calendar policy's backtest (lib/models/backtest.py): which days each monthly training
stops on, holds out and refits on, over a small synthetic feature table in DuckDB."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from unified_assets.lib.models import backtest, specs, training
from unified_assets.lib.models.specs import ModelSpec, Rolling

SPEC = ModelSpec(
    name="toy", task="regression", description="a toy regressor", table="t.rows",
    date_column="day", key=("day", "k"), label="y", features=("x", "carrier"),
    categorical=("carrier",),
    params={"objective": "regression", "num_leaves": 4, "learning_rate": 0.2,
            "min_data_in_leaf": 5},
    gates=specs.ARRIVAL_DELAY_REGRESSOR.gates, budget=1, num_boost_round=60,
    early_stopping_rounds=10, label_lag_days=1,
)


@pytest.fixture(scope="module")
def conn():
    """January 1 to April 30, 2013, 40 rows a day; the label's slope drifts day by day."""
    rng = np.random.default_rng(7)
    days = [date(2013, 1, 1) + timedelta(days=i) for i in range(120)]
    frame = pd.DataFrame({
        "day": np.repeat(days, 40), "k": np.tile(np.arange(40), len(days)),
        "x": rng.normal(size=40 * len(days)),
        "carrier": rng.choice(["AA", "B6", "UA"], size=40 * len(days)),
    })
    slope = 1 + np.repeat(np.arange(len(days)), 40) / 30
    frame["y"] = slope * frame["x"] + (frame["carrier"] == "AA") + rng.normal(0, 0.1, len(frame))
    frame["origin"] = "EWR"
    db = duckdb.connect()
    db.execute("CREATE SCHEMA t")
    db.execute("CREATE TABLE t.rows AS SELECT * FROM frame")
    yield db
    db.close()


def april(conn) -> pd.DataFrame:
    return training.load_split(conn, SPEC, (date(2013, 4, 1), date(2013, 5, 1)))


def test_the_calendar_early_stops_on_its_last_known_days(conn):
    rows = april(conn)
    schedule = backtest.monthly_retraining(conn, SPEC, rows, "day", Rolling(), budget=1)
    [one] = schedule.trainings
    assert one["as_of"] == "2013-03-30"  # March 31's labels land on April 1
    assert one["valid"] == ["2013-03-17", "2013-03-31"]
    assert one["train_rows"] == 75 * 40  # Jan 1 .. Mar 16
    assert one["refit_rows"] == 0
    assert not np.isnan(schedule.predictions).any()


def test_holding_out_the_loops_test_days_moves_early_stopping_back_and_refit_trains_on_all(conn):
    rows = april(conn)
    held = backtest.monthly_retraining(conn, SPEC, rows, "day", Rolling(), 1, held_out_days=14)
    [one] = held.trainings
    assert one["valid"] == ["2013-03-03", "2013-03-17"]
    assert one["train_rows"] == 61 * 40  # Jan 1 .. Mar 2
    refit = backtest.monthly_retraining(conn, SPEC, rows, "day", Rolling(), 1, held_out_days=14,
                                        refit=True)
    [again] = refit.trainings
    assert again["rounds"] == one["rounds"] and again["refit_rows"] == 89 * 40  # .. Mar 30
    # The refit is the early-stopped parameters and rounds, trained on every known day.
    train = training.load_split(conn, SPEC, (date(2013, 1, 1), date(2013, 3, 3)))
    valid = training.load_split(conn, SPEC, (date(2013, 3, 3), date(2013, 3, 17)))
    trained = training.train(SPEC, train, valid, budget=1)
    known = training.load_split(conn, SPEC, (date(2013, 1, 1), date(2013, 3, 31)))
    booster = lgb.Booster(model_str=training.refit(SPEC, trained, known))
    assert booster.num_trees() == one["rounds"]
    assert np.allclose(refit.predictions, training.predict(booster, SPEC, rows), atol=1e-12)
    assert not np.allclose(refit.predictions, held.predictions)
    # On a label that drifts, the refit (which saw the last four weeks) errs less in April.
    y = rows["y"].to_numpy()
    assert np.abs(refit.predictions - y).mean() < np.abs(held.predictions - y).mean()
