"""The heavy model steps on a Dask cluster (lib/core/cluster.py connects to it).

A model's search runs its trials side by side as Dask tasks, each an ordinary LightGBM
training on a worker that reads the training snapshot's Parquet; a training set larger than
the spec's row threshold trains with `lightgbm.dask` over that snapshot cut into row slices
spread over the workers, so no process holds all of it; and a long window is scored slice by
slice on the workers.

Nothing is pickled to disk: the workers return model text (LightGBM's own format) and
predictions; the driver stores the model by sha256 as a local training does.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from unified_assets.lib.core import files
from unified_assets.lib.core.cluster import (
    CONNECT_TIMEOUT_S,
    DistributedTrainingFailed,
    read_sample,
    read_share,
    read_slice,
    slices,
    verify,
    workers,
)
from unified_assets.lib.models import training
from unified_assets.lib.models.handoffs import Snapshot
from unified_assets.lib.models.specs import ModelSpec, Rolling

log = logging.getLogger(__name__)

# Rows of a training set from which a model trains with lightgbm.dask rather than on one
# worker, per spec; 0: never (the forecaster has a few thousand rows). Others: the default.
TRAINING_ROWS = {
    "delay_classifier": 1_000_000,
    "arrival_delay_regressor": 1_000_000,
    "departures_forecaster": 0,
}
DEFAULT_TRAINING_ROWS = 1_000_000
# Above the threshold, each search trial reads at most this many training rows (every k-th):
# the search picks parameters and rounds, the distributed training then uses every row.
SEARCH_ROWS = 500_000
# One lightgbm.dask training at a time on a cluster: concurrent ones are known to hang.
TRAINING_LOCK = "unified_assets/lightgbm-dask"
NETWORK_TIMEOUT_MIN = 5  # LightGBM's socket time-out between workers (its default is 120)
WATCH_S = 0.5  # how often a distributed training checks that its workers are still there


def training_rows(spec: ModelSpec, overrides: str = "") -> int:
    """Rows from which `spec` trains with lightgbm.dask: `overrides` ('model=rows,...'), else
    the spec's entry in TRAINING_ROWS, else the default; 0 means never."""
    for item in filter(None, (p.strip() for p in (overrides or "").split(","))):
        name, _, rows = item.partition("=")
        if not rows.strip().isdigit():
            raise ValueError(f"dask training rows {item!r}: expected model=rows")
        if name.strip() == spec.name:
            return int(rows)
    return TRAINING_ROWS.get(spec.name, DEFAULT_TRAINING_ROWS)


def categories(path: str, spec: ModelSpec) -> dict[str, list[str]]:
    """Every value of each categorical feature in the snapshot, sorted as pandas sorts a
    column's categories: each slice then codes them alike, as one frame would."""
    found: dict[str, set] = {c: set() for c in spec.categorical}
    file = pq.ParquetFile(path)
    for group in range(file.metadata.num_row_groups):
        table = file.read_row_group(group, columns=list(spec.categorical))
        for column in spec.categorical:
            values = pc.unique(table[column].cast("string")).drop_null().to_pylist()
            found[column].update(values)
    return {c: sorted(v) for c, v in found.items()}


def _weights(spec: ModelSpec, frame: pd.DataFrame, half_life_days: int,
             end: date | None) -> np.ndarray | None:
    if not half_life_days or end is None:
        return None
    return Rolling(half_life_days=half_life_days).weights(frame[spec.date_column], end)


def _part(spec: ModelSpec, path: str, share: int, shares: int, cats: dict[str, list[str]],
          half_life_days: int, end: date | None) -> dict:
    """One worker's share of the training snapshot as lightgbm.dask takes it (on the worker)."""
    frame = read_share(path, share, shares)
    x, y, _ = training.inputs(spec, frame)
    for column, values in cats.items():
        x[column] = pd.Categorical(frame[column].astype("string"), categories=values)
    w = _weights(spec, frame, half_life_days, end)
    return {"x": x, "y": pd.Series(y, name="y"),
            "w": pd.Series(w if w is not None else np.ones(len(frame)), name="w")}


# -- the search: trials as tasks -----------------------------------------------------------
def _trial(spec: ModelSpec, number: int, params: dict, seed: int, train_ref: Snapshot,
           valid_ref: Snapshot, half_life_days: int, end: date | None,
           max_rows: int) -> dict:
    """One search trial on a worker: reads the snapshots, trains (`training.fit_trial`, which
    first clears any LightGBM network a killed distributed training left), returns the model
    text."""
    verify(train_ref.path, train_ref.sha256)
    verify(valid_ref.path, valid_ref.sha256)
    train = read_sample(train_ref.path, max_rows)
    valid = pd.read_parquet(valid_ref.path)
    x_train, y_train, _ = training.inputs(spec, train)
    x_valid, _, valid_offset = training.inputs(spec, valid)
    booster, full, record = training.fit_trial(
        spec, number, params, seed, x_train, y_train, _weights(spec, train, half_life_days, end),
        x_valid, training.label(spec, valid), valid_offset,
    )
    record["rows"] = len(train)
    return {"record": record, "params": full,
            "text": booster.model_to_string(num_iteration=record["best_iteration"])}


def search(client, spec: ModelSpec, train_ref: Snapshot, valid_ref: Snapshot, budget: int = 0,
           seed: int = 13, half_life_days: int = 0, end: date | None = None,
           max_rows: int = SEARCH_ROWS) -> training.Trained:
    """The seeded search of `training.train`, its trials side by side as Dask tasks; the same
    trials, the same choice (on all rows, the same model as a local search). A trial whose
    worker dies is run again by Dask (up to its `allowed-failures`)."""
    verify(train_ref.path, train_ref.sha256)
    verify(valid_ref.path, valid_ref.sha256)
    run = uuid.uuid4().hex[:8]
    futures = [
        client.submit(_trial, spec, number, params, seed, train_ref, valid_ref, half_life_days,
                      end, max_rows, key=f"trial-{spec.name}-{number}-{run}", pure=False)
        for number, params in enumerate(training.trial_params(spec, budget, seed))
    ]
    try:
        results = client.gather(futures)
    except Exception as exc:
        raise DistributedTrainingFailed(
            f"{spec.name}: a search trial failed on the Dask cluster at "
            f"{client.scheduler.address}: {type(exc).__name__}: {exc}") from exc
    finally:
        for future in futures:
            future.release()
    best = None
    for result in results:
        if training.better(spec, result["record"]["valid_score"], best and best["score"]):
            best = {"score": result["record"]["valid_score"], **result}
    text = best["text"]
    return training.Trained(lgb.Booster(model_str=text), best["params"],
                            best["record"]["best_iteration"], best["score"],
                            [r["record"] for r in results], text=text)


# -- distributed training -------------------------------------------------------------------
def train_distributed(client, spec: ModelSpec, train_ref: Snapshot, valid: pd.DataFrame,
                      params: dict, rounds: int, half_life_days: int = 0,
                      end: date | None = None) -> tuple[training.Trained, dict]:
    """`params` trained for `rounds` rounds with lightgbm.dask over the training snapshot,
    each worker loading one interleaved share of its rows (every worker holds data, one part
    each, so the parts' order and LightGBM's ranks do not change the data a rank sees).
    Returns the model (scored on the validation window here) and what ran where."""
    import dask.dataframe as dd
    import lightgbm.dask as lgb_dask

    verify(train_ref.path, train_ref.sha256)
    path = train_ref.path
    names = workers(client)
    cats = categories(path, spec)
    run = uuid.uuid4().hex[:8]
    parts = [client.submit(_part, spec, path, i, len(names), cats, half_life_days, end,
                           workers=[name], allow_other_workers=False,
                           key=f"share-{spec.name}-{i}-{run}", pure=False)
             for i, name in enumerate(names)]

    def column(name: str) -> list:
        return [client.submit(lambda p, n=name: p[n], part, workers=[names[i % len(names)]],
                              key=f"slice-{name}-{spec.name}-{i}-{run}", pure=False)
                for i, part in enumerate(parts)]

    x_parts, y_parts, w_parts = column("x"), column("y"), column("w")
    meta_x = client.submit(lambda p: p["x"].iloc[:0], parts[0], pure=False).result()
    x = dd.from_delayed(x_parts, meta=meta_x)
    y = dd.from_delayed(y_parts, meta=pd.Series([], dtype="float64", name="y"))
    w = dd.from_delayed(w_parts, meta=pd.Series([], dtype="float64", name="w"))
    model_class = lgb_dask.DaskLGBMClassifier if spec.task == "binary" else \
        lgb_dask.DaskLGBMRegressor
    settings = {k: v for k, v in params.items() if k != "num_threads"}
    # Ranks in the workers' sorted order, share i on rank i: the same data for each rank
    # whatever order Dask lists the parts in. Each worker names a port it found free, as
    # lightgbm.dask does itself when `machines` is not given.
    ports = client.run(_free_port)
    machines = ",".join(f"{urlsplit(name).hostname}:{ports[name]}" for name in names)
    settings |= {"time_out": NETWORK_TIMEOUT_MIN, "machines": machines}
    model = model_class(client=client, n_estimators=rounds, **settings)
    started = time.perf_counter()
    try:
        _fit_watched(client, names, parts + x_parts + y_parts + w_parts,
                     lambda: model.fit(x, y, sample_weight=w,
                                       categorical_feature=list(spec.categorical)))
    except Exception as exc:
        free_networks(client)  # a failed fit leaves the survivors' LightGBM network set up
        raise DistributedTrainingFailed(
            f"{spec.name}: lightgbm.dask training on the Dask cluster at "
            f"{client.scheduler.address} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        for future in parts + x_parts + y_parts + w_parts:
            future.release()
    seconds = time.perf_counter() - started
    booster = model.to_local().booster_
    text = booster.model_to_string()
    booster = lgb.Booster(model_str=text)
    x_valid, _, offset = training.inputs(spec, valid)
    score = training.validation_score(spec, training.label(spec, valid),
                            booster.predict(x_valid) + offset)
    record = {"trial": "distributed", "params": {k: v for k, v in params.items()
                                                 if k not in ("seed", "deterministic",
                                                              "force_row_wise", "verbose",
                                                              "num_threads")},
              "best_iteration": rounds, "valid_score": score,
              "seconds": round(seconds, 3)}
    trained = training.Trained(booster, params, rounds, score, [record], text=text)
    where = {"mode": "lightgbm.dask", "workers": len(names), "partitions": len(parts),
             "rows": int(pq.ParquetFile(path).metadata.num_rows)}
    return trained, where


def _fit_watched(client, names: list[str], inputs: list, fit) -> None:
    """`fit()` (a lightgbm.dask training over the workers `names`) while watching that those
    workers stay. LightGBM cannot notice a peer that died between two messages: a worker
    reading from the closed socket loops forever. So a worker that leaves mid-training
    cancels the training's tasks (by cancelling their `inputs`), restarts the surviving
    workers (their LightGBM threads may be in that loop) and fails, naming the worker."""
    outcome: dict = {}

    def run() -> None:
        try:
            with client.as_current():  # the current client is per thread
                fit()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="lightgbm-dask-fit", daemon=True)
    thread.start()
    gone: list[str] = []
    while thread.is_alive() and not gone:
        thread.join(WATCH_S)
        gone = sorted(set(names) - set(client.nthreads()))
    if gone:
        client.cancel(inputs, force=True, reason="a training worker left")
        thread.join(CONNECT_TIMEOUT_S)
        survivors = [name for name in names if name not in gone]
        log.warning(f"Dask worker(s) {', '.join(gone)} left mid-training; restarting "
                    f"{', '.join(survivors) or 'no survivor'}")
        if survivors:
            client.restart_workers(survivors, raise_for_error=False)
        raise DistributedTrainingFailed(f"worker {', '.join(gone)} left the cluster in the "
                                        "middle of the training")
    if "error" in outcome:
        raise outcome["error"]


def train(client, spec: ModelSpec, train_ref: Snapshot, valid_ref: Snapshot, budget: int = 0,
          seed: int = 13, half_life_days: int = 0, end: date | None = None,
          min_rows: int | None = None) -> tuple[training.Trained, dict]:
    """A model trained on the cluster: the search as tasks; then, when the training set has
    at least `min_rows` rows (the spec's threshold), the best trial's parameters and rounds
    trained again with lightgbm.dask on every row. Returns the model and what ran where."""
    from distributed import Lock

    threshold = training_rows(spec) if min_rows is None else min_rows
    rows = int(pq.ParquetFile(train_ref.path).metadata.num_rows)
    distributed = bool(threshold) and rows >= threshold
    # LightGBM's network is global to a worker process: while a lightgbm.dask training runs,
    # any other training in the same process would join it. One training at a time on the
    # cluster, then, from a clean state.
    with client.as_current(), Lock(TRAINING_LOCK):
        free_networks(client)
        searched = search(client, spec, train_ref, valid_ref, budget, seed, half_life_days,
                          end, max_rows=SEARCH_ROWS if distributed else max(rows, 1))
        where = {"mode": "search", "workers": len(workers(client)), "rows": rows,
                 "trials": len(searched.trials), "distributed_from_rows": threshold}
        if not distributed:
            return searched, where
        valid = pd.read_parquet(valid_ref.path)
        trained, ran = train_distributed(client, spec, train_ref, valid, searched.params,
                                         searched.best_iteration, half_life_days, end)
    trained.trials = searched.trials + trained.trials
    return trained, where | ran


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def free_networks(client) -> None:
    """Tear down LightGBM's network set-up in every worker process: a lightgbm.dask training
    that failed (a peer killed) leaves it in place, and the worker's next ordinary training
    would then wait for peers that are gone. A worker that just died is skipped (its
    replacement starts clean)."""
    client.run(training.free_network, on_error="ignore")


# -- scoring over partitions ---------------------------------------------------------------
def _score_slice(spec: ModelSpec, text: str, path: str, group: int, start: int,
                 stop: int) -> np.ndarray:
    return training.predict(lgb.Booster(model_str=text), spec, read_slice(path, group, start,
                                                                          stop))


def _map_score(client, spec: ModelSpec, model_text: str, ref: Snapshot,
               parts_per_worker: int) -> tuple[np.ndarray, int]:
    verify(ref.path, ref.sha256)
    cuts = slices(ref.path, parts_per_worker * len(workers(client)))
    text = client.scatter(model_text, broadcast=True)
    futures = [client.submit(_score_slice, spec, text, ref.path, *cut, pure=False)
               for cut in cuts]
    try:
        pieces = client.gather(futures)
    except Exception as exc:
        raise DistributedTrainingFailed(f"{spec.name}: scoring on the Dask cluster at "
                                        f"{client.scheduler.address} failed: {exc}") from exc
    return (np.concatenate(pieces) if pieces else np.array([], dtype=float)), len(cuts)


def score(client, spec: ModelSpec, model_text: str, ref: Snapshot,
          parts_per_worker: int = 2) -> np.ndarray:
    """The snapshot's rows scored slice by slice on the workers, in the snapshot's order:
    the same numbers as `training.predict` on the whole frame."""
    return _map_score(client, spec, model_text, ref, parts_per_worker)[0]


def score_query(client, spec: ModelSpec, model_text: str, conn, sql: str, params: dict,
                folder: Path, parts_per_worker: int = 2) -> tuple[np.ndarray, dict]:
    """The rows of the DuckDB query `sql` scored on the workers, in the query's order: DuckDB
    writes them to a Parquet file in `folder` (which the workers must reach: the artifact
    store), the workers score it slice by slice as `score` does, and the file is removed.
    This process never holds the rows' features, only their predictions. Returns the
    predictions and what ran where."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.name}-{uuid.uuid4().hex}.parquet"
    try:
        quoted = str(path).replace("'", "''")
        conn.execute(f"COPY ({sql}) TO '{quoted}' (FORMAT parquet)", params)
        ref = Snapshot(path=str(path), sha256=files.sha256_file(path))
        predictions, parts = _map_score(client, spec, model_text, ref, parts_per_worker)
    finally:
        path.unlink(missing_ok=True)
    where = {"mode": "scoring", "workers": len(workers(client)), "partitions": parts,
             "rows": len(predictions)}
    return predictions, where
