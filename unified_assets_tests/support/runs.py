"""Runs of the graph for the system tier: the code location's assets materialized in this
process over a home folder, the outcomes of their checks, and small model specs that train in
seconds. Fixtures live in conftest.py; no test module imports another."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import dagster as dg

from unified_assets.defs.factory import build_model_assets
from unified_assets.defs.resources import build_resources
from unified_assets.defs.settings import Settings
from unified_assets.lib.models import specs

DATA_LAYERS = dg.AssetSelection.groups("raw", "warehouse", "marts")
FEATURES_UP = dg.AssetSelection.groups("raw", "warehouse", "marts", "features")
# A dagster.yaml whose pools (the `duckdb` one among them) admit one step at a time.
POOL_LIMIT_1 = "concurrency:\n  pools:\n    default_limit: 1\n    granularity: op\n"


# -- runs of the graph ---------------------------------------------------------------------------
def resources_for(home: Path, **settings) -> dict:
    """The code location's resources over `home`, with a short lock wait and any `settings`."""
    return build_resources(Settings(home=str(home), lock_timeout_s=10, **settings))


def all_assets() -> list:
    from unified_assets.definitions import defs

    return list(defs.assets)


def first_key(asset) -> dg.AssetKey:
    """An AssetsDefinition's key, or an external AssetSpec's."""
    return asset.key if isinstance(asset, dg.AssetSpec) else next(iter(asset.keys))


def data_and_feature_assets() -> list:
    layers = ("landing", "raw", "warehouse", "marts", "features")
    return [a for a in all_assets() if first_key(a).path[0] in layers]


def run_assets(
    home: Path,
    assets: list,
    selection=None,
    start: str | None = None,
    end: str | None = None,
    instance: dg.DagsterInstance | None = None,
    **settings,
) -> dg.ExecuteInProcessResult:
    """Materialize `selection` of `assets` over the days start..end (if given), as one run, on
    `instance`, else on an ephemeral instance disposed after the run (the result keeps its
    events); `settings`: Settings fields other than their defaults."""
    tags = {}
    if start:
        tags = {
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        }
    # Without an instance, materialize() makes an ephemeral one and disposes of it.
    return dg.materialize(assets, selection=selection, resources=resources_for(home, **settings),
                          tags=tags, instance=instance, raise_on_error=False)


def run(
    home: Path,
    start: str | None = "2013-01-01",
    end: str | None = "2013-01-03",
    selection=None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize the data layers (or a selection) over the days start..end, as one run."""
    if selection is None:
        selection = DATA_LAYERS
    return run_assets(home, all_assets(), selection, start, end, instance)


def check_outcomes(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    """(asset, check) -> passed, for every check evaluated in the run."""
    outcomes = {}
    for event in result.get_asset_check_evaluations():
        outcomes[(event.asset_key.to_user_string(), event.check_name)] = event.passed
    return outcomes


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
    }


def tick(defs: dg.Definitions, name: str, home: Path, instance: dg.DagsterInstance,
         cursor: str | None = None, **settings):
    """One tick of the sensor `name` over `home` with these settings: its run requests, what it
    returned, and the cursor it left."""
    sensor = defs.resolve_sensor_def(name)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=resources_for(home, **settings)
    ) as context:
        result = sensor(context)
    requests = [] if isinstance(result, dg.SkipReason) or result is None else (
        [result] if isinstance(result, dg.RunRequest) else list(result))
    return requests, result, context.cursor


# -- models ----------------------------------------------------------------------------------
def small(spec: specs.ModelSpec, **changes) -> specs.ModelSpec:
    """The spec on January: train 1-14, validate 15-21, test 22-28; a quick search."""
    windows = dict(
        train=(date(2013, 1, 1), date(2013, 1, 15)),
        valid=(date(2013, 1, 15), date(2013, 1, 22)),
        test=(date(2013, 1, 22), date(2013, 1, 29)),
    )
    if spec.task == "forecast":  # its targets are 7 days ahead of the feature day
        windows = dict(
            train=(date(2013, 1, 1), date(2013, 1, 10)),
            valid=(date(2013, 1, 10), date(2013, 1, 16)),
            test=(date(2013, 1, 16), date(2013, 1, 22)),
        )
    loose = dataclasses.replace(spec.gates, metric_floor=0.55 if spec.higher_is_better else 500,
                                amdr_threshold=0.0, max_slice_gap=10.0)
    return dataclasses.replace(spec, **(windows | dict(budget=2, num_boost_round=150,
                                                       gates=loose) | changes))


def train_and_deploy(home: Path, spec: specs.ModelSpec, **settings) -> dg.ExecuteInProcessResult:
    """training set -> model -> evaluation -> manifest (the unpartitioned part of the chain),
    with these `settings`."""
    chain = build_model_assets(spec)
    selection = [a.key for a in chain[:4]]
    return run_assets(home, data_and_feature_assets() + chain, selection=selection, **settings)
