"""The small classifier's retraining (after its training set) as a job on the dagster-dask
executor, rebuilt by name in each Dask worker (a run's steps are reconstructed where they run):

    dg.build_reconstructable_job("unified_assets_tests.support.dask_job",
                                 "small_retraining_on_dask",
                                 reconstructable_kwargs={"home": ..., "address": ...})
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from unified_assets.defs.executors import retraining_on_dask
from unified_assets.defs.factory import build_model_assets
from unified_assets.lib.models import specs
from unified_assets_tests.support.runs import data_and_feature_assets, resources_for, small

# The small classifier on January (train 1-14, validate 15-21, test 22-28), one trial.
SPEC = small(specs.DELAY_CLASSIFIER, budget=1)


def small_retraining_on_dask(home: str, address: str) -> dg.JobDefinition:
    """model -> evaluation -> gated manifest of the small classifier, each step a task on the
    Dask cluster at `address`, over the home folder `home` (the code location's own job)."""
    job = retraining_on_dask(SPEC, address)
    defs = dg.Definitions(assets=data_and_feature_assets() + build_model_assets(SPEC),
                          resources=resources_for(Path(home)), jobs=[job])
    return defs.resolve_job_def(job.name)
