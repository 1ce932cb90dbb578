"""The leakage report and audit (lib/features/leakage.py) on real days, clean and with a leak
planted."""

from __future__ import annotations

from datetime import date, timedelta

from unified_assets.lib.core import database
from unified_assets.lib.features import catalog, flight_table, leakage, origin_daily_table, tables
from unified_assets_tests.support.planted import plant_leak, planted_leak_feature
from unified_assets_tests.support.small_warehouse import REAL_END, REAL_START


def test_leakage_report_clean_then_planted(real):
    with database.transaction(real):
        n = flight_table.build_flight_features(real, REAL_START, REAL_END, 120)
        origin_daily_table.build_origin_daily(real, REAL_START, REAL_END)
    assert n == real.execute("SELECT count(*) FROM warehouse.fct_flights").fetchall()[0][0] > 8000
    clean = leakage.leakage_report(real, tables.FLIGHT_FEATURES)
    assert set(clean) == {f.name for f in catalog.features_of(tables.FLIGHT_FEATURES)}
    assert set(clean.values()) == {0}
    assert set(leakage.leakage_report(real, tables.ORIGIN_DAILY).values()) == {0}
    # The features are there (a report of zeros over NULL columns would prove nothing).
    filled = real.execute(
        "SELECT count(temp_f), count(carrier_late_rate_7d), count(*) FILTER (WHERE "
        "has_prev_flight), count(plane_age_years) FROM features.flight_features"
    ).fetchall()[0]
    assert all(c > 1000 for c in filled), filled

    leaked = plant_leak(real)
    assert leaked > 8000
    registry = catalog.REGISTRY | {"leaky_arrival_delay": planted_leak_feature()}
    report = leakage.leakage_report(real, tables.FLIGHT_FEATURES, registry=registry)
    assert report["leaky_arrival_delay"] == leaked
    assert {k: v for k, v in report.items() if k != "leaky_arrival_delay"} == clean
    window = leakage.leakage_report(
        real, tables.FLIGHT_FEATURES, date(2013, 1, 5), date(2013, 1, 6), registry
    )
    assert 0 < window["leaky_arrival_delay"] < leaked
    # A rebuild after the plant keeps the extra columns (NULL) and is clean again.
    flight_table.build_flight_features(real, REAL_START, REAL_END, 120)
    report = leakage.leakage_report(real, tables.FLIGHT_FEATURES, registry=registry)
    assert set(report.values()) == {0}


def test_the_audit_catches_a_leak_that_the_as_of_columns_hide(real, monkeypatch):
    """The old rule dated an outcome at departure + air time + 60 minutes: no taxi-in, no
    hold. Features built with it pass the as-of check (it compares the rule with itself); the
    audit, from the real landing times, names the features that used outcomes not yet known."""
    with database.transaction(real):
        flight_table.build_flight_features(real, REAL_START, REAL_END, 120)
    clean = leakage.audit(real, tables.FLIGHT_FEATURES)
    assert {f.feature: f.violations for f in clean if f.violations} == {}
    audited = {f.rule for f in clean if f.rows}
    assert audited == {"schedule", "weather", "rates", "inbound", "departed", "live"}

    old_rule = ("time_hour_utc + to_minutes(minute(sched_dep_ts) + dep_delay_min "
                "+ air_time_min + 60)")
    monkeypatch.setattr(flight_table, "KNOWN_AT_UTC", old_rule)
    flight_table.build_flight_features(real, REAL_START, REAL_END, 120)
    assert set(leakage.leakage_report(real, tables.FLIGHT_FEATURES).values()) == {0}
    leaks = {f.feature: f for f in leakage.audit(real, tables.FLIGHT_FEATURES)}
    inbound = leaks["prev_arr_delay_min"]
    assert inbound.rule == "inbound" and 0 < inbound.violations < inbound.rows
    assert inbound.sample and set(inbound.sample[0]) >= {"flight_date", "cutoff_utc", "tailnum"}
    assert leaks["has_prev_flight"].violations > 0
    assert leaks["temp_f"].violations == 0 and leaks["prev_dep_delay_min"].violations == 0


def test_a_days_audit_reads_only_its_look_back_and_finds_the_same(real, monkeypatch):
    """The daily path audits one day from the events of its look-back (the longest rate
    window and a margin), not the whole history: the same findings as reading every event,
    on clean features and on leaking ones."""
    with database.transaction(real):
        flight_table.build_flight_features(real, REAL_START, REAL_END, 120)
    table, last = tables.FLIGHT_FEATURES, REAL_END - timedelta(days=1)
    # Without the 28-day rates the look-back is 4 days: shorter than the 10 days held
    near = {n: f for n, f in catalog.REGISTRY.items()
            if leakage.audit_rule(f)[0] not in ("rates", "history")}
    assert leakage.lookback_days(table, near) == 4
    assert leakage.lookback_days(table, catalog.REGISTRY) == 28 + 3

    def findings(registry: dict, lookback: int | None = None) -> dict:
        with monkeypatch.context() as patch:
            if lookback is not None:
                patch.setattr(leakage, "lookback_days", lambda table, registry: lookback)
            return {f.feature: (f.rows, f.violations)
                    for f in leakage.audit(real, table, last, REAL_END, registry)}

    clean = findings(near)
    assert clean == findings(near, 10_000)  # every event
    assert clean["origin_departures_3h"][0] > 0 and clean["prev_arr_delay_min"][0] > 0
    assert {v for _, v in clean.values()} == {0}
    # a look-back shorter than the 28-day rates miscounts them: the bound is what holds it
    assert findings(catalog.REGISTRY, 3)["carrier_late_rate_28d"][1] > 0
    monkeypatch.setattr(flight_table, "KNOWN_AT_UTC", "time_hour_utc + to_minutes(minute("
                        "sched_dep_ts) + dep_delay_min + air_time_min + 60)")
    flight_table.build_flight_features(real, REAL_START, REAL_END, 120)
    leaking = findings(near)
    assert leaking["prev_arr_delay_min"][1] > 0 and leaking == findings(near, 10_000)
    assert real.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE "
                        "'leak_%'").fetchall()[0][0] == 0


def test_each_days_live_audit_reads_enough_departures_before_its_first_cutoff(real):
    """The running totals behind the 3-hour features start just before a day's earliest
    cutoff: audited day by day, every count agrees, and one departure too many on the
    earliest row whose window holds departures is caught, and nothing else."""
    with database.transaction(real):
        flight_table.build_flight_features(real, REAL_START, REAL_END, 120)
    table = tables.FLIGHT_FEATURES
    for n in range((REAL_END - REAL_START).days):
        day = REAL_START + timedelta(days=n)
        found = leakage.audit(real, table, day, day + timedelta(days=1))
        assert {f.feature: f.violations for f in found if f.violations} == {}, day
    last = REAL_END - timedelta(days=1)
    first = real.execute(f"SELECT flight_date, carrier, flight, origin, sched_dep_ts FROM {table} "
                         "WHERE flight_date = $d AND origin_departures_3h > 0 "
                         "ORDER BY cutoff_utc, carrier, flight LIMIT 1", {"d": last}).fetchone()
    real.execute(f"UPDATE {table} SET origin_departures_3h = origin_departures_3h + 1 WHERE "
                 "(flight_date, carrier, flight, origin, sched_dep_ts) = (?, ?, ?, ?, ?)",
                 list(first))
    found = {f.feature: f.violations for f in leakage.audit(real, table, last, REAL_END)}
    assert {n: v for n, v in found.items() if v} == {"origin_departures_3h": 1}


def _frame(n_pos: int, n_neg: int, null_pos: int, null_neg: int):
    import numpy as np
    import pandas as pd

    label = [1] * n_pos + [0] * n_neg
    gap = [np.nan] * null_pos + [1.0] * (n_pos - null_pos) + [np.nan] * null_neg
    gap += [1.0] * (n_neg - null_neg)
    steady = [np.nan if i % 10 == 0 else 2.0 for i in range(n_pos + n_neg)]
    return pd.DataFrame({"label": label, "gap": gap, "steady": steady})


def test_a_feature_null_only_for_positives_is_a_missingness_leak():
    frame = _frame(n_pos=300, n_neg=3000, null_pos=90, null_neg=0)
    (leak,) = leakage.missingness_leaks(frame, ["gap", "steady"], "label", binary=True)
    assert (leak.feature, leak.null_rows, leak.where_null, leak.elsewhere) == ("gap", 90, 0.3, 0.0)
    assert leak.measure == "odds ratio" and leak.score > 1000  # finite: +0.5 in each cell


def test_missingness_ratio_threshold_and_minimum_support():
    # Null in 6% of positives against 1.2% of negatives: odds ratio 5.25, flagged; in 5.4% of
    # them: 4.70, not flagged.
    at = _frame(n_pos=1000, n_neg=5000, null_pos=60, null_neg=60)
    assert [x.feature for x in leakage.missingness_leaks(at, ["gap"], "label", True)] == ["gap"]
    below = _frame(n_pos=1000, n_neg=5000, null_pos=54, null_neg=60)
    assert leakage.missingness_leaks(below, ["gap"], "label", True) == []
    # Too few nulls to say anything, however lopsided.
    few = _frame(n_pos=300, n_neg=3000, null_pos=19, null_neg=0)
    assert leakage.missingness_leaks(few, ["gap"], "label", True) == []


def test_a_numeric_label_shifted_where_the_feature_is_null_is_flagged():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    y = rng.normal(10, 4, 2000)
    frame = pd.DataFrame({"y": y, "gap": np.where(y > 15, np.nan, 1.0),
                          "noise": np.where(rng.random(2000) < 0.2, np.nan, 1.0)})
    leaks = leakage.missingness_leaks(frame, ["gap", "noise"], "y", binary=False)
    assert [x.feature for x in leaks] == ["gap"]
    assert leaks[0].measure == "label shift (sd)" and leaks[0].score > 1.5
    assert leaks[0].where_null > 15 > leaks[0].elsewhere
