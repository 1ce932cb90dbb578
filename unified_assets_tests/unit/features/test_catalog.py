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
    flight_cols = {name for name, _ in catalog.layout(tables.FLIGHT_FEATURES)}
    expected = (flight_cols - not_features) | {"dest"}
    assert {f.name for f in catalog.features_of(tables.FLIGHT_FEATURES)} == expected
    daily_cols = {name for name, _ in tables.COLUMNS[tables.ORIGIN_DAILY]}
    daily_not = {"origin", "feature_date", "target_date", "horizon_days", "cutoff_utc",
                 "departures_target", "history_as_of"}
    assert {f.name for f in catalog.features_of(tables.ORIGIN_DAILY)} == daily_cols - daily_not
    for f in catalog.REGISTRY.values():
        assert f.dtype in catalog.DTYPES and f.source_tables and f.owner and f.description
        assert f.as_of in {name for name, _ in catalog.layout(f.table)}
    leak = planted_leak_feature()
    assert leak.name == "leaky_arrival_delay" and leak.as_of == "leaky_as_of"
    assert leak.name not in catalog.REGISTRY


def test_a_lookup_must_be_computable_online_and_known_in_advance():
    import pytest

    ok = catalog.lookup("is_holiday", "bool", "warehouse.dim_holiday",
                        {"flight_date": "holiday_date"}, "TRUE", "BOOLEAN", "Holiday.",
                        default="FALSE")
    assert ok.lookup.rows_sql() == "SELECT holiday_date AS k0, TRUE AS v FROM warehouse.dim_holiday"
    assert ok.as_of == "cutoff_utc" and ok.source_tables == ("warehouse.dim_holiday",)
    with pytest.raises(ValueError, match="not known online"):
        catalog.lookup("x", "int", "warehouse.dim_plane", {"arr_delay_min": "seats"}, "1",
                       "INTEGER", "A key only the outcome knows.")
    with pytest.raises(ValueError, match="availability rule is cutoff_utc"):
        catalog.Feature("x", "X.", "int", ("warehouse.dim_plane",), "me", tables.FLIGHT_FEATURES,
                        "weather_as_of", ok.lookup)
    # the shipped lookups are the plane's: the table layout ends with them, matched by name
    assert [f.name for f in catalog.lookups_of(tables.FLIGHT_FEATURES)] == ["seats", "engine"]
    assert catalog.layout(tables.FLIGHT_FEATURES)[-2:] == (("seats", "SMALLINT"),
                                                           ("engine", "VARCHAR"))


def test_the_weather_is_declared_once_as_an_as_of_group():
    import pytest

    (group,) = catalog.as_of_groups(tables.FLIGHT_FEATURES)
    assert [f.name for f in group] == ["temp_f", "dewp_f", "humid_pct", "wind_speed_mph",
                                       "wind_gust_mph", "precip_in", "pressure_mb", "visib_mi"]
    assert catalog.as_of_rows_sql(group).startswith(
        "SELECT origin AS k0, time_hour_utc + INTERVAL 1 HOUR AS known, temp_f AS temp_f")
    assert ("weather_as_of", "TIMESTAMP") in catalog.layout(tables.FLIGHT_FEATURES)
    declared = group[0].asof
    with pytest.raises(ValueError, match="availability rule is its as-of column"):
        catalog.Feature("x", "X.", "float", (declared.table,), "me", tables.FLIGHT_FEATURES,
                        "cutoff_utc", asof=declared)
