"""What the tests share, in one place: runs of the graph, reads of the warehouse, small model
specs, a planted leak, and the system programs some tests need. Fixtures live in conftest.py;
no test module imports another."""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from unified_assets.defs.factory import build_model_assets
from unified_assets.defs.resources import Settings, build_resources
from unified_assets.lib.core import config, database
from unified_assets.lib.features import features
from unified_assets.lib.models import specs
from unified_assets.lib.raw import landing

REPO = Path(__file__).resolve().parents[1]
DATA_LAYERS = dg.AssetSelection.groups("raw", "warehouse", "marts")
FEATURES_UP = dg.AssetSelection.groups("raw", "warehouse", "marts", "features")
# A dagster.yaml whose pools (the `duckdb` one among them) admit one step at a time.
POOL_LIMIT_1 = "concurrency:\n  pools:\n    default_limit: 1\n    granularity: op\n"
CI_ENV = "UNIFIED_ASSETS_CI"


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


def featured_copy(template: Path, home: Path, days: tuple[str, str]) -> Path:
    """A copy of the landed `template` at `home` with `days` (first, last) landed and built up
    to the feature tables: what a model's windows read."""
    shutil.copytree(template, home)
    landing.land(home, through=date.fromisoformat(days[1]))
    assert run_assets(home, data_and_feature_assets(), selection=FEATURES_UP, start=days[0],
                      end=days[1]).success  # fmt: skip
    return home


def run_assets(
    home: Path,
    assets: list,
    selection=None,
    start: str | None = None,
    end: str | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize `selection` of `assets` over the days start..end (if given), as one run."""
    tags = {}
    if start:
        tags = {
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        }
    return dg.materialize(
        assets,
        selection=selection,
        resources=resources_for(home),
        tags=tags,
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


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


# -- reads -----------------------------------------------------------------------------------
def query(home: Path, sql: str, params=None) -> list[tuple]:
    conn = database.connect(config.warehouse_path(home), read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def scalar(home: Path, sql: str, params=None):
    return query(home, sql, params)[0][0]


def data_rows(path: Path) -> int:
    """The data rows of a landed CSV file (its header not counted)."""
    with path.open(newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


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
                                amdr_threshold=0.0, max_slice_gap=10.0)  # fmt: skip
    return dataclasses.replace(spec, **(windows | dict(budget=2, num_boost_round=150,
                                                       gates=loose) | changes))  # fmt: skip


def train_and_deploy(home: Path, spec: specs.ModelSpec) -> dg.ExecuteInProcessResult:
    """training set -> model -> evaluation -> manifest (the unpartitioned part of the chain)."""
    chain = build_model_assets(spec)
    selection = [a.key for a in chain[:4]]
    return run_assets(home, data_and_feature_assets() + chain, selection=selection)


def planted_leak_feature() -> features.Feature:
    """A deliberately leaky feature: the flight's own arrival delay, known only after it lands."""
    return features.Feature(
        name="leaky_arrival_delay",
        description="PLANTED LEAK for tests: the flight's own arrival delay, known after its "
        "cutoff.",
        dtype="int",
        source_tables=("warehouse.fct_flights",),
        owner=features.OWNER,
        table=features.FLIGHT_FEATURES,
        as_of="leaky_as_of",
    )


def plant_leak(conn: duckdb.DuckDBPyConnection) -> int:
    """Add `leaky_arrival_delay` (= arr_delay_min) and `leaky_as_of` (departure + air time +
    60 minutes, long after the cutoff) to features.flight_features; return the rows given a
    leaky value."""
    table = features.FLIGHT_FEATURES
    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS leaky_arrival_delay INTEGER")
    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS leaky_as_of TIMESTAMP")
    conn.execute(
        f"UPDATE {table} AS t SET leaky_arrival_delay = f.arr_delay_min, "
        f"leaky_as_of = t.sched_dep_utc + to_minutes(f.dep_delay_min + f.air_time_min + 60) "
        f"FROM warehouse.fct_flights AS f WHERE f.flight_date = t.flight_date "
        f"AND f.carrier = t.carrier AND f.flight = t.flight AND f.origin = t.origin "
        f"AND f.sched_dep_ts = t.sched_dep_ts"
    )
    return conn.execute(
        f"SELECT count(*) FROM {table} WHERE leaky_arrival_delay IS NOT NULL"
    ).fetchall()[0][0]


# -- system programs -------------------------------------------------------------------------
def require_program(name: str, install_hint: str) -> str:
    """The program's path; when absent, skip (fail under UNIFIED_ASSETS_CI=1) with the hint.

    Some end-to-end tests need a system program (a browser, a database server); CI sets
    UNIFIED_ASSETS_CI=1, which turns the skip into a failure, so CI always runs those tests."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed; install it with `{install_hint}`"
    if os.environ.get(CI_ENV) == "1":
        pytest.fail(f"{message} ({CI_ENV}=1: CI must run this test)", pytrace=False)
    pytest.skip(message)


def query_frame(home: Path, sql: str, params=None):
    """A read-only query of the warehouse as a pandas frame."""
    conn = database.connect(config.warehouse_path(home), read_only=True)
    try:
        return conn.execute(sql, params or []).df()
    finally:
        conn.close()
