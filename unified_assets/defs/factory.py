"""The one factory: a model spec becomes its training set, model, evaluation, gated manifest
and daily predictions. Adding a model is adding a spec to lib/models.py."""

import dagster as dg

from unified_assets.defs.deployment.assets import manifest_asset
from unified_assets.defs.models.assets import evaluation_asset, model_asset, training_set_asset
from unified_assets.defs.serving.assets import predictions_asset
from unified_assets.lib.models import SPECS, ModelSpec


def build_model_assets(spec: ModelSpec) -> list[dg.AssetsDefinition]:
    return [
        training_set_asset(spec),
        model_asset(spec),
        evaluation_asset(spec),
        manifest_asset(spec),
        predictions_asset(spec),
    ]


def all_model_assets() -> list[dg.AssetsDefinition]:
    return [asset for spec in SPECS.values() for asset in build_model_assets(spec)]
