"""Executors a deployment may choose instead of the in-process default (docs/deploy.md).

Only functions live here: `load_from_defs_folder` picks up module-level Dagster objects, and
the code location's executor stays `in_process_executor` unless definitions.py says otherwise.
"""

import dagster as dg

from unified_assets.defs.jobs import key, retrain_job

# The retraining steps that read and write only artifacts (no warehouse, no `duckdb` pool).
ARTIFACT_STEPS = (("models", "model"), ("models", "evaluation"), ("deployment", "manifest"))


def dask_executor(address: str) -> dg.ExecutorDefinition:
    """dagster-dask's executor on an existing Dask scheduler (the `.[dask]` extra): each step
    of a run becomes a task on a worker. Create the cluster yourself (at least two threads a
    worker for LightGBM) and name it here; dagster-dask's own local cluster forces one thread.
    The run needs a persistent Dagster instance (the workers read and write its records)."""
    from dagster_dask import dask_executor as executor

    return executor.configured({"cluster": {"existing": {"address": address}}})


def retraining_on_dask(spec, address: str):
    """A model's retraining after its training set: model -> evaluation -> gated manifest,
    each step a task on the Dask cluster at `address`. The training-set step (it reads the
    warehouse, in the `duckdb` pool) runs first in an ordinary run: dagster-dask 0.29.27 cannot
    submit a run whose steps use a concurrency pool (Dask walks the run's records as tuples)."""
    job = retrain_job(spec)
    return dg.define_asset_job(
        f"{job.name}_on_dask",
        selection=[key(layer, spec, step) for layer, step in ARTIFACT_STEPS],
        tags=job.tags, description=f"{job.description} (after its training set; on Dask)",
        executor_def=dask_executor(address),
    )
