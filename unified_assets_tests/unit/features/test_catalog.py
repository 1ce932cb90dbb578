"""The feature registry (lib/features/catalog.py) against the feature tables' columns."""

from __future__ import annotations

from unified_assets.lib.features import catalog, tables
from unified_assets_tests.support.planted import planted_leak_feature
from unified_assets_tests.support.small_warehouse import AS_OF, KEY


def test_registry_covers_the_feature_columns():
    not_features = {
        *KEY, "dest", "tailnum", "sched_dep_utc", "lead_minutes", "cutoff_utc", *AS_OF,
        "arr_delay_min", "is_late_15", "is_cancelled", "is_diverted",
    } - {"carrier", "origin"}
    flight_cols = {name for name, _ in tables.COLUMNS[tables.FLIGHT_FEATURES]}
    expected = (flight_cols - not_features) | {"dest"}
    assert {f.name for f in catalog.features_of(tables.FLIGHT_FEATURES)} == expected
    daily_cols = {name for name, _ in tables.COLUMNS[tables.ORIGIN_DAILY]}
    daily_not = {"origin", "feature_date", "target_date", "horizon_days", "cutoff_utc",
                 "departures_target", "history_as_of"}
    assert {f.name for f in catalog.features_of(tables.ORIGIN_DAILY)} == daily_cols - daily_not
    for f in catalog.REGISTRY.values():
        assert f.dtype in catalog.DTYPES and f.source_tables and f.owner and f.description
        assert f.as_of in {name for name, _ in tables.COLUMNS[f.table]}
    leak = planted_leak_feature()
    assert leak.name == "leaky_arrival_delay" and leak.as_of == "leaky_as_of"
    assert leak.name not in catalog.REGISTRY
