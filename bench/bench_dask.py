"""Benchmark: the delay classifier trained on an N-times larger year, in one process and on a
2-worker Dask LocalCluster, side by side in one run.

Data: bench_ml's synthetic N-times year (`bench_ml.scale_up`: every flight and plane N times
over, distinct flight and tail numbers), landed through September, built to
`features.flight_features` by the bare lib/ SQL (as bench_ml's bare script does), then the
training (Jan-Aug) and validation (September) windows' labelled rows written as Parquet
snapshots, in key order, as a training set stores them.

- local: one process reads both snapshots and runs `training.train` (the spec's search with
  --budget trials; LightGBM, 2 threads), as the model step does without a cluster;
- dask: one driver process starts a LocalCluster (2 worker processes, 2 threads each, loopback)
  and runs `dask_steps.train` with the distributed threshold at 1 row: the search trial(s) as tasks
  on a sample of at most `dask_steps.SEARCH_ROWS` training rows, then lightgbm.dask over every row,
  the snapshot cut into row slices pinned to the workers.

Each variant is a fresh process; wall time by the parent; peak RSS read by each process of
itself (getrusage) at the end: the driver, and each worker through `client.run`.
Usage: python bench/bench_dask.py [--scale 10] [--budget 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_foundation import BARE as BARE_FOUNDATION  # noqa: E402
from bench_ml import scale_up  # noqa: E402

FEATURES = (
    BARE_FOUNDATION
    + """
from unified_assets.lib.features import flight_table
from unified_assets.lib.warehouse.calendar import write_dim_date
with warehouse.transaction(conn):
    write_dim_date(conn, start, end)
    flight_table.build_flight_features(conn, start, end, 120)  # the default lead
conn.close()
"""
)

LOCAL = """
import json, resource, sys, time
import pandas as pd
from unified_assets.lib.models import specs
from unified_assets.lib.models import training
spec = specs.DELAY_CLASSIFIER
train, valid = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
started = time.perf_counter()
trained = training.train(spec, train, valid, budget=int(sys.argv[3]))
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"train_seconds": time.perf_counter() - started,
                  "valid_auc": trained.valid_score, "rounds": trained.best_iteration,
                  "rows": len(train), "rss_mib": {"driver": rss}}))
"""

DASK = """
import json, logging, resource, sys, time
from distributed import Client, LocalCluster
from unified_assets.lib.core import cluster
from unified_assets.lib.models import dask_steps, specs

def peak():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

if __name__ == "__main__":
    spec = specs.DELAY_CLASSIFIER
    refs = [json.loads(a) for a in sys.argv[1:3]]
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.ERROR,
                      env=dict(cluster.WORKER_ENV)) as local, Client(local) as client:
        client.wait_for_workers(2)
        started = time.perf_counter()
        trained, where = dask_steps.train(client, spec, refs[0], refs[1], budget=int(sys.argv[3]),
                                       min_rows=1)
        seconds = time.perf_counter() - started
        workers = client.run(peak)
    rss = {"driver (+ scheduler)": peak()}
    rss.update({f"worker {i + 1}": v for i, v in enumerate(workers.values())})
    print(json.dumps({"train_seconds": seconds, "valid_auc": trained.valid_score,
                      "rounds": trained.best_iteration, "rows": where["rows"],
                      "partitions": where["partitions"],
                      "search_seconds": sum(t["seconds"] for t in trained.trials[:-1]),
                      "fit_seconds": trained.trials[-1]["seconds"], "rss_mib": rss}))
"""


def snapshot(db: Path, out: Path, start: str, end: str) -> dict:
    """The window's labelled rows of features.flight_features as Parquet, in key order, with
    the reference a training set records (path, sha256, rows)."""
    import hashlib

    import duckdb

    from unified_assets.lib.models import specs

    spec = specs.DELAY_CLASSIFIER
    columns = list(dict.fromkeys([*spec.key, *spec.features, *spec.slice_columns, spec.label]))
    conn = duckdb.connect(str(db), read_only=True)
    conn.execute(
        f"COPY (SELECT {', '.join(columns)} FROM features.flight_features "
        f"WHERE flight_date >= DATE '{start}' AND flight_date < DATE '{end}' "
        f"AND {spec.label} IS NOT NULL ORDER BY {', '.join(spec.key)}) "
        f"TO '{out}' (FORMAT parquet)"
    )
    rows = conn.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0]
    conn.close()
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    return {"path": str(out), "sha256": sha, "rows": rows, "window": [start, end]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--budget", type=int, default=1)
    parser.add_argument("--variants", default="local,dask", help="which to run, in order")
    parser.add_argument("--work", default="", help="keep the prepared data here, reuse it")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from unified_assets.lib.raw import landing

    root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-dask-"))
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    try:
        refs = root / f"synthetic-{args.scale}x.json"
        if refs.exists():
            train, valid = json.loads(refs.read_text())
        else:
            home = root / "home"
            started = time.perf_counter()
            landing.land(home, through=date(2013, 9, 30))
            if args.scale > 1:
                scale_up(home, args.scale)
            subprocess.run([sys.executable, "-c", FEATURES, str(home), "2013-01-01",
                            "2013-10-01"], check=True, env=env,
                           stdout=subprocess.DEVNULL)
            db = home / "unified_assets.duckdb"
            train = snapshot(db, root / "train.parquet", "2013-01-01", "2013-09-01")
            valid = snapshot(db, root / "valid.parquet", "2013-09-01", "2013-10-01")
            refs.write_text(json.dumps([train, valid]))
            print(f"data ready in {time.perf_counter() - started:.0f} s", flush=True)
        print(f"{train['rows']:,} training and {valid['rows']:,} validation rows", flush=True)
        results = {}
        scripts = {"local": (LOCAL, [train["path"], valid["path"]]),
                   "dask": (DASK, [json.dumps(train), json.dumps(valid)])}
        for name in args.variants.split(","):
            script, argv = scripts[name]
            script_path = root / f"variant_{name}.py"  # not dask.py: it would shadow dask
            script_path.write_text(script)
            begun = time.perf_counter()
            out = subprocess.run([sys.executable, str(script_path), *argv, str(args.budget)],
                                 env=env, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"{name} failed ({out.returncode}): {out.stderr[-3000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["wall_seconds"] = time.perf_counter() - begun
            results[name] = result
            print(name, json.dumps(result), flush=True)
    finally:
        if not args.work:
            shutil.rmtree(root, ignore_errors=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}; scale {args.scale}x; budget {args.budget}")
    print("| variant | training rows | process wall (s) | training (s) | rounds | valid AUC | "
          "peak RSS per process (MiB) |\n|---|---|---|---|---|---|---|")
    for name, r in results.items():
        rss = ", ".join(f"{k} {v:,.0f}" for k, v in r["rss_mib"].items())
        print(f"| {name} | {r['rows']:,} | {r['wall_seconds']:.1f} | {r['train_seconds']:.1f} | "
              f"{r['rounds']} | {r['valid_auc']:.4f} | {rss} |")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"dask-{args.scale}x.json").write_text(json.dumps(
        {"machine": machine, "scale": args.scale, "budget": args.budget, "results": results,
         "measured_at": time.strftime("%Y-%m-%d")}, indent=2))


if __name__ == "__main__":
    main()
