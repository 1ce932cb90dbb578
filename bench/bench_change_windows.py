"""After a concept shift, how fresh must a retraining's data be to learn it? Retrains the flight
models as of days after the shift with the spec's windows (two weeks held out for early
stopping, two for the gates) and with fresher ones, and scores each on the same rows after
the as-of day, in the warehouse of a scenario replay (docs/scenarios.md).

Usage: python bench/bench_change_windows.py HOME [--start 2013-06-12] [--days 28] [--budget 1]
  HOME: a scenario replay's home, e.g. data/scenarios/ewr_afternoon_slowdown/loop after
  `unified-assets scenarios` (its warehouse holds the shifted days).

Prints, per model, as-of day and windows: the realized metric on the days from the as-of day
plus the label lag to the start plus `days`, and the training seconds. This is the evidence
behind `retrain_change_rolling_days` (lib/monitoring/retraining.py).
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from unified_assets.lib.core import config, database
from unified_assets.lib.models import evaluation, training
from unified_assets.lib.models.specs import SPECS, Rolling

VARIANTS = {"spec's (all,14,14)": Rolling(0, 14, 14), "fresher (all,7,7)": Rolling(0, 7, 7),
            "fresher, recency-weighted (all,7,7,30)": Rolling(0, 7, 7, 30)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home", type=Path)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2013, 6, 12))
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--budget", type=int, default=1)
    args = parser.parse_args()
    conn = database.connect(config.warehouse_path(args.home), read_only=True)
    end = args.start + timedelta(days=args.days)
    results = []
    for name in ("delay_classifier", "arrival_delay_regressor"):
        spec = SPECS[name]
        for weeks in (0, 1, 2):
            as_of = args.start + timedelta(days=3 + 7 * weeks)
            scored = training.load_split(
                conn, spec, (as_of + timedelta(days=1 + spec.label_lag_days), end))
            y = np.asarray(training.label(spec, scored), float)
            for variant, rolling in VARIANTS.items():
                windows = spec.windows(as_of, rolling)
                train = training.load_split(conn, spec, windows["train"])
                valid = training.load_split(conn, spec, windows["valid"])
                started = time.perf_counter()
                trained = training.train(spec, train, valid, budget=args.budget,
                                         weights=rolling.weights(train[spec.date_column],
                                                                 windows["valid"][0]))
                booster = lgb.Booster(model_str=trained.model_text())
                value = evaluation.primary(spec.task, y, training.predict(booster, spec, scored))
                results.append({"model": name, "as of": str(as_of), "windows": variant,
                                 "train ends": str(windows["train"][1]),
                                 "scored rows": len(scored), "metric": round(value, 4),
                                 "seconds": round(time.perf_counter() - started, 1)})
                print(results[-1], flush=True)
    conn.close()
    print(f"\n{platform.node()} {platform.machine()}, shift from {args.start}, scored to {end}")
    print(pd.DataFrame(results).to_markdown(index=False))


if __name__ == "__main__":
    main()
