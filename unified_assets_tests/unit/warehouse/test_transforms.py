"""The warehouse SQL on small hand-built raw tables: typing, quarantine, dedup, conservation;
the monthly marts (lib/marts/monthly.py) over the curated rows, and the transaction both run in."""

from datetime import date, datetime

import duckdb
import pytest

from unified_assets.lib.core import config, database
from unified_assets.lib.marts import monthly
from unified_assets.lib.raw import ingest
from unified_assets.lib.raw.landing import COLUMNS
from unified_assets.lib.sources import SOURCES
from unified_assets.lib.warehouse import transforms

NOW = datetime(2026, 1, 1)
FLIGHTS = SOURCES["flights"].curation.target
DAY = date(2013, 1, 1)

GOOD = dict(
    year="2013", month="1", day="1", dep_time="517", sched_dep_time="515", dep_delay="2",
    arr_time="830", sched_arr_time="819", arr_delay="11", carrier="UA", flight="1545",
    tailnum="N14228", origin="EWR", dest="IAH", air_time="227", distance="1400", hour="5",
    minute="15", time_hour="2013-01-01T10:00:00Z",
)


@pytest.fixture
def conn(tmp_path):
    c = database.connect(config.warehouse_path(tmp_path))
    database.ensure_schemas(c)
    c.execute(ingest.ddl("flights", partitioned=True))
    yield c
    c.close()


def put(conn, rows, day=DAY):
    cols = [*COLUMNS["flights"], "_source_file", "_source_sha256", "partition_date"]
    for row in rows:
        values = [row.get(c) for c in COLUMNS["flights"]] + ["f.csv", "0" * 64, day]
        conn.execute(
            f"INSERT INTO raw.flights ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            values,
        )


def curate(conn, start=DAY, end=date(2013, 1, 2)):
    return transforms.curate(conn, SOURCES["flights"].curation, NOW, start, end)


def totals(rows_in=0, curated=0, quarantined=0, duplicates=0, conflicting_duplicates=0):
    return dict(rows_in=rows_in, curated=curated, quarantined=quarantined,
                duplicates=duplicates, conflicting_duplicates=conflicting_duplicates)


def test_typed_times_and_flags(conn):
    red_eye = GOOD | dict(flight="1", dep_time="2355", sched_dep_time="2359", dep_delay="-4",
                          arr_time="440", sched_arr_time="437", arr_delay="3")
    cancelled = GOOD | dict(flight="2", dep_time=None, dep_delay=None, arr_time=None,
                            arr_delay=None, air_time=None)
    diverted = GOOD | dict(flight="3", arr_time=None, arr_delay=None, air_time=None)
    put(conn, [GOOD, red_eye, cancelled, diverted])
    assert curate(conn) == totals(rows_in=4, curated=4)
    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT flight, sched_dep_ts, dep_ts, sched_arr_ts, arr_ts, is_cancelled, "
            "is_diverted, delays_consistent, time_hour_utc FROM warehouse.fct_flights"
        ).fetchall()
    }
    assert rows[1545][:4] == (
        datetime(2013, 1, 1, 5, 15), datetime(2013, 1, 1, 5, 17),
        datetime(2013, 1, 1, 8, 19), datetime(2013, 1, 1, 8, 30),
    )
    assert rows[1545][4:] == (False, False, True, datetime(2013, 1, 1, 10))
    # scheduled 23:59, left 4 minutes early; arrival is the next morning
    assert rows[1][1] == datetime(2013, 1, 1, 23, 55)
    assert rows[1][2:4] == (datetime(2013, 1, 2, 4, 37), datetime(2013, 1, 2, 4, 40))
    assert rows[2][4:6] == (True, False) and rows[2][1] is None
    assert rows[3][4:6] == (False, True)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (dict(dep_delay="abc"), "unparseable dep_delay: abc"),
        (dict(carrier=None), "missing carrier"),
        (dict(day="2"), "row dated 2013-01-02 in the file of 2013-01-01"),
        (dict(month="2", day="30"), "invalid date: 2013-2-30"),
        (dict(sched_dep_time="575"), "invalid clock time sched_dep_time: 575"),
        (dict(distance="-5"), "implausible distance: -5"),
        (dict(tailnum="N1\ufffd3"), "invalid UTF-8 bytes in source row"),
        (dict(time_hour="yesterday"), "unparseable time_hour: yesterday"),
        (dict(dep_delay=None), "departed without a dep_delay"),
        (dict(dep_time="517.6"), "unparseable dep_time: 517.6"),
        (dict(flight="1e3"), "unparseable flight: 1e3"),
        (dict(sched_dep_time="3300000"), "invalid clock time sched_dep_time: 3300000"),
    ],
)
def test_bad_rows_are_quarantined_with_their_reason(conn, change, reason):
    put(conn, [GOOD | change, GOOD | dict(flight="9")])
    assert curate(conn) == totals(rows_in=2, curated=1, quarantined=1)
    (got, source, record) = conn.execute(
        "SELECT reason, source_file, record FROM warehouse.quarantine"
    ).fetchone()
    assert reason in got.split("; ")
    assert source == "f.csv" and '"carrier"' in record


def test_every_reason_is_listed(conn):
    put(conn, [GOOD | dict(dep_delay="x", distance="y")])
    curate(conn)
    reason = conn.execute("SELECT reason FROM warehouse.quarantine").fetchone()[0]
    assert reason == "unparseable dep_delay: x; unparseable distance: y"


def test_duplicates_on_the_natural_key_are_counted_and_the_most_complete_kept(conn):
    incomplete = GOOD | dict(tailnum=None)
    put(conn, [incomplete, GOOD, GOOD])
    # the copy of GOOD is an exact duplicate; the row without a tail number differs from the
    # kept one (NULL against N14228), so it is a conflicting one as well
    assert curate(conn) == totals(rows_in=3, curated=1, duplicates=2, conflicting_duplicates=1)
    assert conn.execute("SELECT tailnum FROM warehouse.fct_flights").fetchall() == [("N14228",)]
    assert [r["differing_values"] for r in transforms.conflict_sample(conn)] == [
        "tailnum: N14228 kept, NULL dropped"
    ]


def test_an_exact_duplicate_is_not_a_conflict(conn):
    put(conn, [GOOD, GOOD | dict(flight="9"), GOOD])
    assert curate(conn) == totals(rows_in=3, curated=2, duplicates=1)
    assert transforms.conflict_sample(conn) == []
    assert transforms.conflicting_duplicates(conn, FLIGHTS, DAY, date(2013, 1, 2)) == []


@pytest.mark.parametrize("late_first", [False, True])
def test_a_key_delivered_twice_with_other_values_is_a_conflicting_duplicate(conn, late_first):
    late = GOOD | dict(dep_delay="30")  # same flight, same schedule, another delay
    put(conn, [late, GOOD] if late_first else [GOOD, late])
    assert curate(conn) == totals(rows_in=2, curated=1, duplicates=1, conflicting_duplicates=1)
    assert transforms.conservation_breaks(conn, FLIGHTS, DAY, date(2013, 1, 2)) == []
    # equally complete: the kept row is decided by the md5 of its raw record, not by its place
    # in the file, so both orders keep the same one
    assert conn.execute("SELECT dep_delay_min FROM warehouse.fct_flights").fetchall() == [(30,)]
    (conflict,) = transforms.conflict_sample(conn)
    assert {k: conflict[k] for k in ("partition_date", "carrier", "flight", "origin")} == {
        "partition_date": DAY, "carrier": "UA", "flight": 1545, "origin": "EWR"
    }
    assert conflict["sched_dep_ts"] == datetime(2013, 1, 1, 5, 15)
    assert "dep_delay_min: 30 kept, 2 dropped" in conflict["differing_values"].split("; ")
    assert transforms.conflicting_duplicates(conn, FLIGHTS, DAY, date(2013, 1, 2)) == [(DAY, 1)]


def test_an_audit_table_from_before_conflicts_were_counted_gets_the_column(conn):
    conn.execute(
        "CREATE TABLE warehouse.ingest_audit (table_name VARCHAR, partition_date DATE, "
        "rows_in BIGINT, curated BIGINT, quarantined BIGINT, duplicates BIGINT, "
        "audited_at TIMESTAMP)"
    )
    conn.execute(
        "INSERT INTO warehouse.ingest_audit VALUES (?, DATE '2012-12-31', 5, 4, 0, 1, ?)",
        [FLIGHTS, NOW],
    )
    put(conn, [GOOD, GOOD | dict(dep_delay="30")])
    assert curate(conn) == totals(rows_in=2, curated=1, duplicates=1, conflicting_duplicates=1)
    audit = conn.execute(
        "SELECT partition_date, rows_in, duplicates, conflicting_duplicates "
        "FROM warehouse.ingest_audit ORDER BY 1"
    ).fetchall()
    # the earlier row is kept, its conflicts unmeasured (NULL), not claimed to be zero
    assert audit == [(date(2012, 12, 31), 5, 1, None), (DAY, 2, 1, 1)]


def test_recurating_replaces_only_the_window(conn):
    put(conn, [GOOD])
    put(conn, [GOOD | dict(day="2")], day=date(2013, 1, 2))
    curate(conn, DAY, date(2013, 1, 3))
    curate(conn)  # again, day 1 only
    curate(conn)
    assert conn.execute("SELECT count(*) FROM warehouse.fct_flights").fetchone()[0] == 2
    audit = conn.execute(
        "SELECT partition_date, rows_in FROM warehouse.ingest_audit ORDER BY 1"
    ).fetchall()
    assert audit == [(date(2013, 1, 1), 1), (date(2013, 1, 2), 1)]


def test_empty_days_are_audited_with_zeros(conn):
    put(conn, [GOOD])
    curate(conn, DAY, date(2013, 1, 4))
    assert (
        transforms.conservation_breaks(conn, "warehouse.fct_flights", DAY, date(2013, 1, 4)) == []
    )
    zeros = conn.execute(
        "SELECT count(*) FROM warehouse.ingest_audit WHERE rows_in = 0 AND curated = 0"
    ).fetchone()[0]
    assert zeros == 2


def test_conservation_break_is_reported(conn):
    put(conn, [GOOD])
    curate(conn)
    conn.execute("UPDATE warehouse.ingest_audit SET curated = 5")
    breaks = transforms.conservation_breaks(conn, "warehouse.fct_flights", DAY, date(2013, 1, 2))
    assert breaks and breaks[0]["rows_in"] == 1


def test_marts_aggregate_the_facts(conn):
    late = GOOD | dict(flight="7", arr_delay="40", arr_time="859")
    put(conn, [GOOD, late])
    curate(conn)
    assert monthly.refresh(conn, "marts.carrier_origin_monthly") == 1
    row = conn.execute(
        "SELECT month, flights, arrived, on_time_rate, mean_arr_delay_min "
        "FROM marts.carrier_origin_monthly"
    ).fetchone()
    assert row == (date(2013, 1, 1), 2, 2, 0.5, 25.5)
    assert monthly.refresh(conn, "marts.carrier_origin_monthly") == 1


def test_transaction_rolls_back_on_error(conn):
    put(conn, [GOOD])
    with pytest.raises(duckdb.Error), database.transaction(conn):
        conn.execute("DELETE FROM raw.flights")
        conn.execute("SELECT no_such_column FROM raw.flights")
    assert conn.execute("SELECT count(*) FROM raw.flights").fetchone()[0] == 1
