"""Benchmark: the whole 2013 graph, landing files to manifests and predictions, next to the
same computation as one bare script (DuckDB + LightGBM, no orchestration).

- pipeline: `unified-assets build --through 2013-12-31` (one Dagster run of every asset: every
  check, pandera validation, DQ scores, gates, manifests, predictions for every day);
- bare: one Python process running the same lib/ SQL (ingest, curation, marts, features), the
  same training (same search budget), evaluation, scoring and monitoring (drift with learned
  thresholds, the multivariate signal, realized and estimated performance for every day), with
  no Dagster, no validation, no DQ and no gates.

Each runs in a fresh process on the same landing files; wall time and peak RSS are measured
by the parent (wait4). The models' test metrics come from the pipeline's manifests.
With --scale N (N > 1) the landing zone is a synthetic year N times as large: every flight
(and every plane) replicated N times with distinct tail numbers and flight numbers.
Usage: python bench/bench_ml.py [--repeat 1] [--scale 10] [--budget 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_foundation import BARE as BARE_FOUNDATION  # noqa: E402
from bench_foundation import timed  # noqa: E402

BARE_ML = (
    BARE_FOUNDATION
    + """
import os
from unified_assets.lib.monitoring.drift_policy import DriftPolicy
from unified_assets.lib.core import artifacts
from unified_assets.lib.monitoring import drift
from unified_assets.lib.monitoring import drift_classifier
from unified_assets.lib.monitoring import estimation
from unified_assets.lib.models import evaluation
from unified_assets.lib.features import flight_table, origin_daily_table
from unified_assets.lib.models import specs
from unified_assets.lib.monitoring import model_health
from unified_assets.lib.models import training
from unified_assets.lib.warehouse.calendar import write_dim_date

with warehouse.transaction(conn):
    write_dim_date(conn, start, date(2013, 12, 31))
    flight_table.build_flight_features(conn, start, end, 120)  # the settings' default lead
    origin_daily_table.build_origin_daily(conn, start, end)
for spec in specs.SPECS.values():
    frames = {n: training.load_split(conn, spec, w)
              for n, w in (("train", spec.train), ("valid", spec.valid), ("test", spec.test))}
    trained = training.train(spec, frames["train"], frames["valid"])
    ref = artifacts.save_model(home, trained.model_text(), {"model": spec.name})
    test = frames["test"]
    pred = training.predict(trained.booster, spec, test)
    base = training.baseline(spec, frames["train"], test)
    print(spec.name, evaluation.primary(spec.task, training.label(spec, test), pred))
    # Score every day only with the models the pipeline deployed in the same round: the same
    # computation on both sides (the pipeline does not score with a model its gate rejected).
    if spec.name not in os.environ.get("BENCH_SCORE_MODELS", spec.name).split(","):
        continue
    everything = conn.execute(f"SELECT * FROM {spec.table}").df()
    everything["prediction"] = training.predict(trained.booster, spec, everything)
    everything["model_version"] = ref.sha256
    with warehouse.transaction(conn):
        conn.register("_p", everything[[*spec.key, "prediction", "model_version"]])
        conn.execute(f"CREATE OR REPLACE TABLE serving.{spec.name}_predictions AS SELECT * FROM _p")
    # The same monitoring as the pipeline's, every day: drift against thresholds learned from
    # the training weeks, the multivariate signal, realized and estimated performance.
    policy = DriftPolicy()
    valid_pred = training.predict(trained.booster, spec, frames["valid"])
    reference, sample = drift.build_reference(
        frames["train"], list(spec.features), list(spec.categorical), valid_pred,
        frames["train"][spec.date_column], policy.window_days)
    if sample is not None:
        reference[drift_classifier.SAMPLE] = sample
    estimator = estimation.fit_estimator(spec.task, training.label(spec, frames["valid"]),
                                         valid_pred)
    with warehouse.transaction(conn):
        model_health.monitor_window(conn, spec, start, end, lambda version: reference, policy,
                                  datetime.now(), lambda version: estimator)
"""
)


def scale_up(home: Path, factor: int) -> None:
    """Replicate each day's flights and the planes `factor` times: copy k gets flight numbers
    + 10000*k and tail numbers whose first letter is shifted by k (still valid, all distinct)."""
    import duckdb

    conn = duckdb.connect()
    copies = f"range(0, {factor}) AS c(k)"
    shifted = "chr(CAST(ascii('A') + k AS INTEGER)) || substr(tailnum, 2)"
    tail = f"CASE WHEN k = 0 THEN tailnum ELSE {shifted} END"
    for path in sorted((home / "landing" / "flights").glob("*.csv")):
        conn.execute(
            f"COPY (SELECT * REPLACE (CAST(flight AS INTEGER) + 10000 * k AS flight, {tail} AS "
            f"tailnum) FROM read_csv('{path}', all_varchar=true, nullstr='NA'), {copies} "
            "ORDER BY k) "
            f"TO '{path}.tmp' (HEADER, FORMAT csv)"
        )
        os.replace(f"{path}.tmp", path)
    planes = home / "landing" / "reference" / "planes.csv"
    conn.execute(
        f"COPY (SELECT * REPLACE ({tail} AS tailnum) FROM read_csv('{planes}', all_varchar=true, "
        f"nullstr='NA'), {copies}) TO '{planes}.tmp' (HEADER, FORMAT csv)"
    )
    os.replace(f"{planes}.tmp", planes)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--scale", type=int, default=1, help="synthetic N-times larger year")
    parser.add_argument("--budget", type=int, default=0, help="search budget for both (0: spec)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from unified_assets.lib.raw import landing

    root = Path(tempfile.mkdtemp(prefix="bench-ml-"))
    source = root / "landed"
    landing.land(source, through=date(2013, 12, 31))
    if args.scale > 1:
        scale_up(source, args.scale)
    bin_dir = Path(sys.executable).parent
    # The pipeline runs first in each round: the bare script then scores with the same models
    # the pipeline's gates deployed.
    results: dict[str, list[tuple[float, float]]] = {"pipeline": [], "bare": []}
    manifests_seen = {}
    try:
        for i in range(args.repeat):
            for variant in results:
                home = root / f"{variant}-{i}"
                shutil.copytree(source, home)
                env = dict(os.environ, UNIFIED_ASSETS_HOME=str(home),
                           DAGSTER_HOME=str(home / "dagster_home"))
                if args.budget:
                    env["UNIFIED_ASSETS_SEARCH_BUDGET"] = str(args.budget)
                if variant == "bare":
                    env["BENCH_SCORE_MODELS"] = ",".join(sorted(manifests_seen))
                if variant == "bare":
                    cmd = [sys.executable, "-c", BARE_ML, str(home), "2013-01-01", "2014-01-01"]
                else:
                    cmd = [str(bin_dir / "unified-assets"), "build", "--through", "2013-12-31"]
                # A gate may reject a model at another scale (its floor is in real units): the
                # run then exits 1 after deciding; it is timed all the same and reported.
                wall, rss, _ = timed(cmd, env, allow_exit=(0, 1) if variant == "pipeline" else (0,))
                results[variant].append((wall, rss))
                print(f"run {i + 1} {variant:8} {wall:7.2f} s {rss:6.0f} MiB", flush=True)
                if variant == "pipeline":
                    manifests_seen.clear()
                    for current in (home / "deployments").glob("*/current.json"):
                        manifests_seen[current.parent.name] = json.loads(current.read_text())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"deployed (and scored on both sides): {', '.join(sorted(manifests_seen)) or 'none'}")
    bare = statistics.median(w for w, _ in results["bare"])
    pipeline = statistics.median(w for w, _ in results["pipeline"])
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}; scale {args.scale}x; budget {args.budget or 'spec'}")
    print("| variant | median wall (s) | x bare | peak RSS (MiB) |\n|---|---|---|---|")
    for v, runs in results.items():
        w = statistics.median(x for x, _ in runs)
        print(f"| {v} | {w:.2f} | {w / bare:.2f} | {max(r for _, r in runs):.0f} |")
    print("\n| model | status | test metric | model | naive baseline | skill / lift |")
    print("|---|---|---|---|---|---|")
    for name, m in sorted(manifests_seen.items()):
        t = m["metrics"]["test"]
        if "auc" in t:
            print(f"| {name} | {m['status']} | AUC | {t['auc']:.4f} | {t['baseline_auc']:.4f} | "
                  f"+{t['auc'] - t['baseline_auc']:.4f} |")
        else:
            print(f"| {name} | {m['status']} | MAE | {t['mae']:.2f} | {t['baseline_mae']:.2f} | "
                  f"{t['skill']:.3f} |")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"ml-{args.scale}x.json").write_text(json.dumps({
        "machine": machine, "runs": results, "ratio": pipeline / bare,
        "models": {n: m["metrics"] for n, m in manifests_seen.items()},
        "measured_at": time.strftime("%Y-%m-%d"),
    }, indent=2, default=str))


if __name__ == "__main__":
    main()
