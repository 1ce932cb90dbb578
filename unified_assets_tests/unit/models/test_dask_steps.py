"""Which models train on the Dask cluster (lib/models/dask_steps.py), decided without one."""

from unified_assets.lib.models import dask_steps, specs


def test_training_goes_to_the_cluster_from_a_row_count_per_model():
    assert dask_steps.training_rows(specs.DELAY_CLASSIFIER) == 1_000_000
    assert dask_steps.training_rows(specs.DEPARTURES_FORECASTER) == 0  # never distributed
    assert dask_steps.training_rows(specs.DELAY_CLASSIFIER, "delay_classifier=5,x=1") == 5
