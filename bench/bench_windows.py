"""Which training window should each model retrain on, and what do the days a retraining
holds out cost? A backtest of the monthly calendar policy (lib/models/backtest.py) with each
variant, on the same rows: March-December 2013.

Usage: python bench/bench_windows.py [--home data] [--budget 1]
  --home: a home whose warehouse holds the year's feature tables (`make run` builds one).

Prints, per model and variant: the realized metric over March-December and October-December,
the trainings and their seconds. The windows: expanding (every labelled day since Jan 1), a
trailing 90 days, and expanding with recency weights halving every 60 days. The hold-outs, on
the expanding window: the loop's (its challenger is early-stopped on the 14 days before the
last 14, which test it against the champion), and each policy refit afterwards on every known
day with the rounds early stopping chose (AutoGluon's refit_full).
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from pathlib import Path

import pandas as pd

from unified_assets.lib.core import config, database
from unified_assets.lib.models import backtest, evaluation, training
from unified_assets.lib.models.specs import SPECS, Rolling

EXPANDING = Rolling(train_days=0)
VARIANTS = {  # name: (window, hold out the loop's test days (the spec's), refit)
    "expanding": (EXPANDING, False, False),
    "trailing 90 days": (Rolling(train_days=90), False, False),
    "expanding, half-life 60 days": (Rolling(train_days=0, half_life_days=60), False, False),
    "expanding, refit": (EXPANDING, False, True),
    "expanding, the loop's 14 test days held out": (EXPANDING, True, False),
    "expanding, the loop's 14 test days held out, refit": (EXPANDING, True, True),
}
FIRST, END = date(2013, 3, 1), date(2014, 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=config.default_home())
    parser.add_argument("--budget", type=int, default=1)
    args = parser.parse_args()
    conn = database.connect(config.warehouse_path(args.home), read_only=True)
    print(f"machine: {platform.machine()}, {platform.python_version()}; home {args.home}; "
          f"budget {args.budget}")
    results = []
    for spec in SPECS.values():
        rows = training.load_split(conn, spec, (FIRST, END))
        y = training.label(spec, rows)
        days = pd.to_datetime(rows[spec.date_column])
        q4 = (days >= pd.Timestamp("2013-10-01")).to_numpy()
        for name, (rolling, hold_out, refit) in VARIANTS.items():
            held_out = spec.rolling.test_days if hold_out else 0
            started = time.perf_counter()
            schedule = backtest.monthly_retraining(conn, spec, rows, spec.date_column, rolling,
                                                   args.budget, held_out, refit)
            pred = schedule.predictions
            results.append({
                "model": spec.name, "variant": name,
                "metric": "AUC" if spec.task == "binary" else "MAE",
                "Mar-Dec": evaluation.primary(spec.task, y, pred),
                "Oct-Dec": evaluation.primary(spec.task, y[q4], pred[q4]),
                "trainings": len(schedule.trainings),
                "training s": round(schedule.seconds, 1),
                "wall s": round(time.perf_counter() - started, 1),
            })
            print(results[-1], flush=True)
    conn.close()
    print()
    print(pd.DataFrame(results).to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main()
