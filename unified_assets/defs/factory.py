"""The one factory: a model spec becomes its training set, model, evaluation and gated
manifest (handing their results to each other through the hand-off IO manager), its daily
predictions and their monitoring. Adding a model is adding a spec to lib/models/specs.py."""

import dagster as dg

from unified_assets.defs.deployment.assets import manifest_asset
from unified_assets.defs.models.assets import evaluation_asset, model_asset, training_set_asset
from unified_assets.defs.monitoring.assets import monitor_asset
from unified_assets.defs.monitoring.sensors import calendar_schedule, retraining_sensor
from unified_assets.defs.serving.assets import predictions_asset
from unified_assets.lib.models.specs import SPECS, ModelSpec


def build_model_assets(spec: ModelSpec) -> list[dg.AssetsDefinition]:
    return [
        training_set_asset(spec),
        model_asset(spec),
        evaluation_asset(spec),
        manifest_asset(spec),
        predictions_asset(spec),
        monitor_asset(spec),
    ]


def all_model_assets() -> list[dg.AssetsDefinition]:
    return [asset for spec in SPECS.values() for asset in build_model_assets(spec)]


def all_model_automation() -> dg.Definitions:
    """Each model's retraining sensor, which carries its retraining job, and its monthly
    calendar schedule (stopped: the fixed alternative to the sensor)."""
    return dg.Definitions(sensors=[retraining_sensor(spec) for spec in SPECS.values()],
                          schedules=[calendar_schedule(spec) for spec in SPECS.values()])
