"""What MLflow costs a training: each model of the 2013 year trained as the platform trains it
(its spec's windows and search), then told to a local SQLite MLflow store as the steps tell it
(the run with its parameters, metrics and training-set input, the LightGBM model logged with
explicit requirements and registered, the test metrics, the `champion` alias), side by side.

Usage: python bench/bench_mlflow.py HOME [--budget 1]
  HOME: a home whose warehouse holds 2013 (after `make run`, data/).

Prints per model: the training's seconds (the bare baseline) and each MLflow call's seconds.
MLflow's import and the store's creation are paid once per process and shown apart.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import tempfile
import time
from pathlib import Path

from unified_assets.lib.core import config, database
from unified_assets.lib.models import evaluation, tracking, training
from unified_assets.lib.models.specs import SPECS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home", type=Path)
    parser.add_argument("--budget", type=int, default=1)
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp(prefix="mlflow-bench-"))
    where = tracking.Tracking(f"sqlite:///{store / 'mlflow.db'}")
    started = time.perf_counter()
    import mlflow  # noqa: F401 - timed: paid once by the process that trains first

    imported = time.perf_counter() - started
    started = time.perf_counter()
    tracking.log_evaluation(where, model="none", sha256="0" * 64, metrics={})  # creates the store
    created = time.perf_counter() - started
    conn = database.connect(config.warehouse_path(args.home), read_only=True)
    # The first training a process tells MLflow pays MLflow's lazy imports (its LightGBM
    # flavour, the model and signature machinery): timed on the small forecaster, apart.
    spec = SPECS["departures_forecaster"]
    first = training.train(spec, training.load_split(conn, spec, spec.train),
                           training.load_split(conn, spec, spec.valid), budget=1)
    started = time.perf_counter()
    tracking.log_training(where, model="first_use", sha256="f" * 64,
                          model_text=first.model_text(), params={}, metrics={}, tags={},
                          train=training.load_split(conn, spec, spec.train),
                          train_sha256="f" * 64, train_path="bench")
    first_use = time.perf_counter() - started
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{platform.python_version()}; once per process: import mlflow {imported:.2f} s, "
          f"first training told {first_use:.2f} s; a new SQLite store {created:.2f} s (once)")
    print("| model | train rows | training s (bare) | log run + model s | test metrics s "
          "| champion alias s | MLflow total s | share of training |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in SPECS.values():
        frames = {n: training.load_split(conn, spec, w)
                  for n, w in (("train", spec.train), ("valid", spec.valid), ("test", spec.test))}
        started = time.perf_counter()
        trained = training.train(spec, frames["train"], frames["valid"], budget=args.budget)
        bare = time.perf_counter() - started
        text = trained.model_text()
        sha = hashlib.sha256(text.encode()).hexdigest()
        started = time.perf_counter()
        tracking.log_training(
            where, model=spec.name, sha256=sha, model_text=text,
            params=trained.params | {"best_iteration": trained.best_iteration},
            metrics={"valid_score": trained.valid_score}, tags={tracking.RUN_TAG: "bench"},
            train=frames["train"], train_sha256="a" * 64, train_path="bench")
        logged = time.perf_counter() - started
        import lightgbm as lgb

        booster = lgb.Booster(model_str=text)
        y = training.label(spec, frames["test"])
        metrics = {"primary": evaluation.primary(
            spec.task, y, training.predict(booster, spec, frames["test"]))}
        started = time.perf_counter()
        tracking.log_evaluation(where, model=spec.name, sha256=sha, metrics=metrics)
        tested = time.perf_counter() - started
        started = time.perf_counter()
        tracking.set_champion(where, model=spec.name, sha256=sha, model_text=lambda text=text: text)
        aliased = time.perf_counter() - started
        total = logged + tested + aliased
        print(f"| {spec.name} | {len(frames['train']):,} | {bare:.2f} | {logged:.2f} | "
              f"{tested:.2f} | {aliased:.2f} | {total:.2f} | {total / bare:.1%} |")
    conn.close()


if __name__ == "__main__":
    main()
