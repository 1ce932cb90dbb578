"""The heavy model steps on a real Dask cluster (the `.[dask]` extra): a LocalCluster of two
worker processes with two threads each, on loopback, over the small classifier's January
windows. The search's trials as tasks, lightgbm.dask training through the same gates, scoring
over partitions, a worker killed mid-training, an unreachable scheduler, and a run on the
dagster-dask executor. (OMP_WAIT_POLICY=PASSIVE is set before LightGBM loads, in conftest.py.)"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import dagster as dg
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from unified_assets.defs.factory import build_model_assets
from unified_assets.defs.resources import load_handoff
from unified_assets.defs.settings import Settings
from unified_assets.lib.core import artifacts, cluster
from unified_assets.lib.deployment import manifests
from unified_assets.lib.models import dask_steps, specs, training
from unified_assets_tests.support import dask_job
from unified_assets_tests.support.reads import query, query_frame
from unified_assets_tests.support.runs import (
    data_and_feature_assets,
    materialized,
    resources_for,
)

distributed = pytest.importorskip("distributed", reason="the .[dask] extra is not installed")

SPEC = dask_job.SPEC
MODEL = SPEC.name
TIMEOUT_S = 300  # no test waits on the cluster longer than this (a bound, not a timing goal: a
# loaded 2-core machine took over 90 s to end the run whose worker was killed)


@pytest.fixture(scope="module")
def dask_client():
    """Two worker processes, two threads each (LightGBM's Dask guide asks for at least two),
    on loopback, no dashboard; shut down at the end of the module."""
    # Without a dashboard the scheduler still serves HTTP, on 8787 unless told otherwise: on a
    # free port, so that the model step's own LocalCluster (a test below) can have 8787.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                  silence_logs=logging.ERROR,
                                  env=dict(cluster.WORKER_ENV)) as local, \
            distributed.Client(local, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=TIMEOUT_S)
        yield client


@pytest.fixture
def fresh(featured_template, tmp_path):
    """Copies of the featured Jan 1-28 home (conftest.py: the small model's windows), one per
    run."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(featured_template, target)
        return target

    return copy


def chain_run(home: Path, spec: specs.ModelSpec, instance=None,
              **settings) -> dg.ExecuteInProcessResult:
    """training set -> model -> evaluation -> gated manifest, with these settings."""
    chain = build_model_assets(spec)
    return dg.materialize(data_and_feature_assets() + chain,
                          selection=[a.key for a in chain[:4]],
                          resources=resources_for(home, **settings),
                          instance=instance,
                          raise_on_error=False)


def model_metadata(home: Path) -> dict:
    return artifacts.load_metadata(home, manifests.current(home, MODEL)["artifact"]["sha256"])


def step_error(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(str(e.event_specific_data.error) for e in result.all_events
                     if e.is_step_failure)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_cluster_setting_is_off_by_default_and_read_from_the_environment(monkeypatch):
    """Its parsing and the row counts that send training to the cluster are unit-tested:
    unit/core/test_cluster.py, unit/models/test_dask_steps.py."""
    monkeypatch.delenv("UNIFIED_ASSETS_DASK_CLUSTER", raising=False)
    assert Settings.from_env().value("dask_cluster") == ""
    monkeypatch.setenv("UNIFIED_ASSETS_DASK_CLUSTER", "local:2")
    assert Settings.from_env().value("dask_cluster") == "local:2"


def test_an_unreachable_scheduler_fails_at_once_naming_it(fresh):
    home = fresh("unreachable")
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    started = time.perf_counter()
    result = chain_run(home, SPEC, dask_cluster=address)
    assert not result.success
    assert time.perf_counter() - started < 60  # the data steps, then a refusal, no waiting
    error = step_error(result)
    assert f"tcp://{address}" in error and "cannot be reached" in error
    assert manifests.current(home, MODEL) is None and manifests.history(home, MODEL) == []


def test_the_search_runs_on_the_cluster_records_its_trials_and_finds_the_local_model(
    fresh, dask_client
):
    spec = dataclasses.replace(SPEC, budget=3)
    local, remote = fresh("local"), fresh("remote")
    assert chain_run(local, spec).success
    assert chain_run(remote, spec, dask_cluster=dask_client.scheduler.address).success
    here, there = model_metadata(local), model_metadata(remote)
    assert there["cluster"]["mode"] == "search" and there["cluster"]["workers"] == 2
    assert "cluster" not in here
    strip = [{k: v for k, v in t.items() if k not in ("seconds", "rows")}
             for t in there["trials"]]
    assert len(strip) == 3
    assert strip == [{k: v for k, v in t.items() if k != "seconds"} for t in here["trials"]]
    # Each trial is the same deterministic LightGBM training: the same model, byte for byte.
    assert manifests.current(remote, MODEL)["version"] == manifests.current(local, MODEL)["version"]


def test_a_local_cluster_is_started_and_stopped_by_the_model_step(fresh):
    import psutil

    home = fresh("local-cluster")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    result = chain_run(home, SPEC, dask_cluster="local:2")
    assert result.success, step_error(result)
    assert model_metadata(home)["cluster"] == {
        "mode": "search", "workers": 2, "rows": model_metadata(home)["rows"]["train"],
        "trials": 1, "distributed_from_rows": dask_steps.training_rows(SPEC)}
    deadline = time.monotonic() + 30  # the workers are gone once the step is done
    while time.monotonic() < deadline:
        left = [" ".join(p.cmdline()) for p in psutil.Process().children(recursive=True)
                if p.pid not in before]
        # multiprocessing's resource tracker stays for this process's life: not a worker
        left = [c for c in left if "resource_tracker" not in c]
        if not left:
            break
        time.sleep(0.2)
    assert not left


def test_distributed_training_passes_the_gates_close_to_local_and_scores_identically(
    fresh, dask_client, record_property
):
    local, remote = fresh("local"), fresh("remote")
    # Without row and feature sampling: on 12k rows a worker's own bagging draw moved the
    # distributed model's test AUC by up to 0.012 from run to run.
    spec = dataclasses.replace(SPEC, params=SPEC.params | {
        "bagging_fraction": 1.0, "bagging_freq": 0, "feature_fraction": 1.0})
    assert chain_run(local, spec).success
    address = dask_client.scheduler.address
    result = chain_run(remote, spec, dask_cluster=address, dask_training_rows=f"{MODEL}=1")
    assert result.success, step_error(result)
    current = manifests.current(remote, MODEL)
    assert current["status"] == "promoted"
    meta = model_metadata(remote)
    assert meta["cluster"]["mode"] == "lightgbm.dask"
    assert meta["cluster"]["workers"] == 2 and meta["cluster"]["partitions"] >= 2
    assert meta["trials"][-1]["trial"] == "distributed"
    auc_local = manifests.current(local, MODEL)["metrics"]["test"]["auc"]
    auc_dask = current["metrics"]["test"]["auc"]
    record_property("test_auc_local", auc_local)
    record_property("test_auc_lightgbm_dask", auc_dask)
    logging.getLogger(__name__).warning(f"test AUC local {auc_local:.4f}, dask {auc_dask:.4f}")
    assert abs(auc_dask - auc_local) <= 0.01
    # The artifact reloads (sha256 verified) and scores the test window identically here and
    # on the workers, slice by slice.
    booster = lgb.Booster(model_str=artifacts.load_model_text(remote, current["version"]))
    handoffs = artifacts.artifacts_root(remote) / artifacts.HANDOFFS / "models"
    test_ref = next(
        load_handoff(remote, dg.AssetKey(["models", p.parent.name]), p.stem).splits["test"]
        for p in handoffs.glob(f"{MODEL}_training_set/*.json")
    )
    here = training.predict(booster, spec, pd.read_parquet(test_ref.path))
    there = dask_steps.score(dask_client, spec, booster.model_to_string(), test_ref)
    assert len(here) == test_ref.rows > 0
    assert np.array_equal(here, there)


def test_a_worker_killed_mid_training_fails_clearly_and_a_rerun_promotes(fresh, dask_client):
    home = fresh("killed")
    # Slow learning, so the distributed training lasts seconds and the kill lands inside it.
    spec = dataclasses.replace(SPEC, num_boost_round=600, early_stopping_rounds=600,
                               params=SPEC.params | {"learning_rate": 0.005})
    settings = dict(dask_cluster=dask_client.scheduler.address, dask_training_rows=f"{MODEL}=1")
    pids = dask_client.run(os.getpid)
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(result=chain_run(home, spec,
                                                                             **settings)))
    started = time.monotonic()
    runner.start()
    victim = None
    deadline = time.monotonic() + TIMEOUT_S
    while victim is None and runner.is_alive() and time.monotonic() < deadline:
        for worker, keys in dask_client.processing().items():
            if any("train_part" in str(k) for k in keys):
                victim = worker
                break
        time.sleep(0.02)
    assert victim is not None, "the distributed training was never seen running"
    seen_at = time.monotonic()
    time.sleep(0.3)  # inside the boosting rounds
    os.kill(pids[victim], signal.SIGKILL)
    killed_at = time.monotonic()
    runner.join(TIMEOUT_S)
    assert not runner.is_alive(), "the run did not end after its worker was killed"
    result = outcome["result"]
    logging.getLogger(__name__).warning(
        f"training seen {seen_at - started:.1f} s after the start; killed {victim}; the run "
        f"{'succeeded' if result.success else 'failed'} "
        f"{time.monotonic() - killed_at:.1f} s later: {step_error(result)[:300]}")
    if not result.success:  # failed clearly, and nothing was promoted half-way
        assert "lightgbm.dask training" in step_error(result)
        assert manifests.current(home, MODEL) is None
        assert [e for e in manifests.history(home, MODEL) if e["status"] == "promoted"] == []
    # The nanny restarts the worker; the same run again gives a valid, promoted manifest.
    dask_client.wait_for_workers(2, timeout=TIMEOUT_S)
    rerun = time.monotonic()
    again = chain_run(home, spec, **settings)
    logging.getLogger(__name__).warning(f"the rerun took {time.monotonic() - rerun:.1f} s")
    assert again.success, step_error(again)
    current = manifests.current(home, MODEL)
    assert current["status"] == "promoted"
    artifacts.load_model_text(home, current["artifact"]["sha256"])  # verifies the sha256


def test_a_run_on_the_dagster_dask_executor_materializes_the_same_assets(fresh, dask_client):
    local, remote = fresh("in-process"), fresh("on-dask")
    reference = chain_run(local, SPEC)
    assert reference.success
    job = dg.build_reconstructable_job(
        "unified_assets_tests.support.dask_job", "small_retraining_on_dask",
        reconstructable_kwargs={"home": str(remote), "address": dask_client.scheduler.address},
    )
    training_set = build_model_assets(SPEC)[0]
    with dg.instance_for_test() as instance:  # a persistent (SQLite) instance the workers open
        # The training set reads the warehouse in the `duckdb` pool: an ordinary run first.
        first = dg.materialize(data_and_feature_assets() + build_model_assets(SPEC),
                               selection=[training_set.key], resources=resources_for(remote),
                               instance=instance)
        with dg.execute_job(job, instance=instance) as result:
            assert result.success
            assert result.job_def.name == f"retrain_{MODEL}_on_dask"
            on_dask = {e.asset_key.to_user_string()
                       for e in result.get_asset_materialization_events()}
            steps = {e.step_key: e.pid for e in result.all_events if e.is_step_success}
    # Each step ran in a Dask worker process, not in this one.
    assert set(steps.values()) <= set(dask_client.run(os.getpid).values())
    assert materialized(first) | on_dask == materialized(reference)
    assert len(steps) == 3
    assert manifests.current(remote, MODEL)["version"] == manifests.current(local, MODEL)["version"]


def serve_run(home: Path, instance: dg.DagsterInstance, **settings) -> dg.ExecuteInProcessResult:
    """The small classifier's predictions over its test week (seven daily partitions) as one
    run, with these settings."""
    chain = build_model_assets(SPEC)
    days = {"dagster/asset_partition_range_start": "2013-01-22",
            "dagster/asset_partition_range_end": "2013-01-28"}
    return dg.materialize(
        data_and_feature_assets() + chain, selection=[chain[4].key], tags=days,
        resources=resources_for(home, **settings), instance=instance, raise_on_error=False,
    )


def predictions_table(home: Path) -> tuple[list, pd.DataFrame]:
    """The predictions table's columns and types, and its rows in key order (without the
    scoring time)."""
    table = f"serving.{MODEL}_predictions"
    columns = query(home, f"SELECT column_name, data_type FROM information_schema.columns "
                          f"WHERE table_schema = 'serving' AND table_name = '{MODEL}_predictions' "
                          "ORDER BY ordinal_position")
    rows = query_frame(home, f"SELECT * EXCLUDE (scored_at) FROM {table} "
                             f"ORDER BY {', '.join(SPEC.key)}")
    return columns, rows


def test_a_long_window_of_predictions_is_scored_on_the_cluster_as_it_is_here(fresh, dask_client,
                                                                             instance):
    here = fresh("served-here")
    assert chain_run(here, SPEC).success  # a promoted model to serve
    there = here.parent / "served-there"
    shutil.copytree(here, there)
    address = dask_client.scheduler.address
    # A week is below the default threshold: scored here, though a cluster is configured.
    local = serve_run(here, instance, dask_cluster=address)
    remote = serve_run(there, instance, dask_cluster=address, dask_training_rows=f"{MODEL}=1")
    assert local.success and remote.success, step_error(remote)
    key = build_model_assets(SPEC)[4].key
    local_meta, remote_meta = ([e.materialization.metadata
                                for e in r.get_asset_materialization_events()
                                if e.asset_key == key] for r in (local, remote))
    assert len(local_meta) == len(remote_meta) == 7  # one per day of the window
    assert not any("cluster" in m for m in local_meta)
    where = remote_meta[0]["cluster"].value
    assert where["mode"] == "scoring" and where["workers"] == 2 and where["partitions"] >= 2
    said = [e.user_message for e in instance.all_logs(remote.run_id)
            if "scored on the Dask cluster" in e.user_message]
    assert said == [f"{MODEL}: {where['rows']} rows scored on the Dask cluster ({where})"]
    assert not [e for e in instance.all_logs(local.run_id) if "Dask" in e.user_message]
    (local_columns, local_rows), (remote_columns, remote_rows) = map(predictions_table,
                                                                     (here, there))
    assert remote_columns == local_columns
    assert where["rows"] == len(remote_rows) == len(local_rows) > 0
    days = pd.to_datetime(remote_rows["flight_date"]).dt.date.astype(str)
    assert days.nunique() == 7 and days.min() == "2013-01-22" and days.max() == "2013-01-28"
    pd.testing.assert_frame_equal(remote_rows.drop(columns="prediction"),
                                  local_rows.drop(columns="prediction"))
    assert np.allclose(remote_rows["prediction"], local_rows["prediction"], rtol=0, atol=1e-12)
    # Nothing is left behind in the artifact store's scoring folder.
    assert list((artifacts.artifacts_root(there) / "scoring").iterdir()) == []
