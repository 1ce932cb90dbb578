"""Bad landing files: each gets a clear error or a quarantine, and every row is accounted for."""

import hashlib
from pathlib import Path

import dagster as dg
import pytest

from unified_assets_tests.support.reads import query, scalar
from unified_assets_tests.support.runs import check_outcomes, run

DAY = "2013-01-02"
ROWS = 943  # flights on 2013-01-02
SELECTION = ["raw/flights", "warehouse/fct_flights"]


# `built` (conftest.py): Jan 1-3 built, so a bad re-delivery of Jan 2 has a last good state to
# keep.


def day_file(home: Path) -> Path:
    return home / "landing" / "flights" / f"{DAY}.csv"


def lines(home: Path) -> list[str]:
    return day_file(home).read_text().splitlines()


def write(home: Path, rows: list[str], tail: str = "\n") -> None:
    day_file(home).write_text("\n".join(rows) + tail)


def rerun(home: Path):
    return run(home, DAY, DAY, selection=SELECTION)


def audit(home: Path) -> tuple[int, int, int, int]:
    return query(
        home,
        "SELECT rows_in, curated, quarantined, duplicates FROM warehouse.ingest_audit "
        f"WHERE table_name = 'warehouse.fct_flights' AND partition_date = DATE '{DAY}'",
    )[0]


def assert_conserved(home: Path) -> tuple[int, int, int, int]:
    rows_in, curated, quarantined, duplicates = audit(home)
    raw = scalar(home, f"SELECT count(*) FROM raw.flights WHERE partition_date = DATE '{DAY}'")
    fct = scalar(home, f"SELECT count(*) FROM warehouse.fct_flights WHERE flight_date = '{DAY}'")
    held = scalar(
        home,
        "SELECT count(*) FROM warehouse.quarantine WHERE table_name = 'warehouse.fct_flights' "
        f"AND partition_date = DATE '{DAY}'",
    )
    assert rows_in == raw == curated + quarantined + duplicates
    assert (curated, quarantined) == (fct, held)
    return rows_in, curated, quarantined, duplicates


def conflicting(home: Path) -> int:
    return scalar(
        home,
        "SELECT conflicting_duplicates FROM warehouse.ingest_audit WHERE table_name = "
        f"'warehouse.fct_flights' AND partition_date = DATE '{DAY}'",
    )


def conflicts_check(result):
    return next(e for e in result.get_asset_check_evaluations()
                if e.check_name == "conflicting_duplicates"
                and e.asset_key.to_user_string() == "warehouse/fct_flights")


def reasons(home: Path) -> list[str]:
    return [r for (r,) in query(home, "SELECT reason FROM warehouse.quarantine ORDER BY 1")]


def test_missing_column_is_a_clear_error_and_keeps_the_last_good_state(built):
    header, *rows = lines(built)
    at = header.split(",").index("dep_delay")
    drop = [",".join(f for i, f in enumerate(r.split(",")) if i != at) for r in [header, *rows]]
    write(built, drop)
    result = rerun(built)
    assert not result.success
    error = str(next(e for e in result.all_events if e.is_step_failure).event_specific_data.error)
    assert f"{DAY}.csv lacks column(s) dep_delay" in error
    assert assert_conserved(built) == (ROWS, ROWS, 0, 0)  # the previous delivery, intact


def test_extra_column_is_kept_in_extra_and_warned(built):
    header, *rows = lines(built)
    write(built, [header + ",gate"] + [r + ",B12" for r in rows])
    result = rerun(built)
    assert result.success
    assert check_outcomes(result)[("raw/flights", "landing_files")] is False
    assert scalar(built, "SELECT DISTINCT _extra FROM raw.flights WHERE "
                  f"partition_date = '{DAY}'") == '{"gate":"B12"}'
    assert assert_conserved(built) == (ROWS, ROWS, 0, 0)


def test_unparseable_numbers_are_quarantined(built):
    header, *rows = lines(built)
    at = header.split(",").index("arr_delay")
    for i in (0, 10, 20):
        fields = rows[i].split(",")
        fields[at] = "12min"
        rows[i] = ",".join(fields)
    write(built, [header, *rows])
    result = rerun(built)
    assert result.success  # 3 of 943 is under the quarantine share that blocks
    outcomes = check_outcomes(result)
    assert outcomes[("raw/flights", "quality")] is False  # raw warns about the text
    assert outcomes[("warehouse/fct_flights", "quarantine_share")] is True
    assert assert_conserved(built) == (ROWS, ROWS - 3, 3, 0)
    assert reasons(built) == ["unparseable arr_delay: 12min"] * 3


def test_duplicate_rows_are_counted_not_kept(built):
    header, *rows = lines(built)
    write(built, [header, *rows, *rows[:5]])
    result = rerun(built)
    assert result.success
    assert assert_conserved(built) == (ROWS + 5, ROWS, 0, 5)
    # exact copies: duplicates, none of them conflicting
    assert conflicting(built) == 0
    assert conflicts_check(result).passed
    validity = scalar(built, "SELECT validity FROM monitoring.data_quality WHERE table_name = "
                      f"'warehouse.fct_flights' AND partition_date = '{DAY}'")
    assert validity == pytest.approx(ROWS / (ROWS + 5))  # a duplicate fails uniqueness


@pytest.mark.parametrize("content", ["", "header-only"])
def test_empty_file_lands_no_rows_and_warns(built, content):
    header = lines(built)[0]
    day_file(built).write_text("" if content == "" else header + "\n")
    result = rerun(built)
    assert result.success
    assert check_outcomes(result)[("raw/flights", "landing_files")] is False
    assert assert_conserved(built) == (0, 0, 0, 0)
    dq = scalar(built, "SELECT dq FROM monitoring.data_quality WHERE table_name = "
                f"'warehouse.fct_flights' AND partition_date = '{DAY}'")
    assert dq is None  # nothing to score


def test_truncated_last_line_is_quarantined(built):
    header, *rows = lines(built)
    rows[-1] = rows[-1][:12]  # e.g. "2013,1,2,235" cut mid-row, no newline
    write(built, [header, *rows], tail="")
    assert rerun(built).success
    assert assert_conserved(built) == (ROWS, ROWS - 1, 1, 0)
    assert "missing carrier" in reasons(built)[0]


def test_rows_of_another_day_are_quarantined(built):
    header, *rows = lines(built)
    rows[:2] = [r.replace("2013,1,2,", "2013,1,3,", 1) for r in rows[:2]]
    write(built, [header, *rows])
    result = rerun(built)
    assert result.success
    share = next(e for e in result.get_asset_check_evaluations()
                 if e.check_name == "quarantine_share")
    assert share.metadata["top_reasons"].value == {"row dated <date> in the file of <date>": 2}
    assert assert_conserved(built) == (ROWS, ROWS - 2, 2, 0)
    assert reasons(built) == [f"row dated 2013-01-03 in the file of {DAY}"] * 2


def test_non_utf8_bytes_are_quarantined_and_the_file_flagged(built):
    data = day_file(built).read_bytes().split(b"\n")
    data[5] = data[5].replace(b",N", b",N\xff\xfe", 1)
    day_file(built).write_bytes(b"\n".join(data))
    result = rerun(built)
    assert result.success
    assert check_outcomes(result)[("raw/flights", "landing_files")] is False
    assert assert_conserved(built) == (ROWS, ROWS - 1, 1, 0)
    (reason,) = reasons(built)
    assert "invalid UTF-8 bytes in source row" in reason.split("; ")
    # the source file's hash is of the bytes as they arrived
    digest = hashlib.sha256(day_file(built).read_bytes()).hexdigest()
    assert scalar(built, f"SELECT DISTINCT _source_sha256 FROM raw.flights WHERE "
                  f"partition_date = '{DAY}'") == digest


def test_row_with_more_fields_than_the_header_is_quarantined_with_its_values(built):
    header, *rows = lines(built)
    rows[7] = rows[7] + ",SURPRISE"
    write(built, [header, *rows])
    assert rerun(built).success
    assert assert_conserved(built) == (ROWS, ROWS - 1, 1, 0)
    (reason,) = reasons(built)
    assert reason.startswith("more fields than the header") and "SURPRISE" in reason


def test_parquet_delivery_is_read_like_csv(built):
    """A user's own Parquet file in the same layout, with real types (timestamps in UTC)."""
    import duckdb

    parquet = day_file(built).with_suffix(".parquet")
    conn = duckdb.connect()
    conn.execute(
        f"COPY (SELECT * REPLACE (CAST(time_hour AS TIMESTAMPTZ) AS time_hour) FROM "
        f"read_csv('{day_file(built)}', nullstr='NA')) TO '{parquet}' (FORMAT parquet)"
    )
    conn.close()
    day_file(built).unlink()
    assert rerun(built).success
    assert assert_conserved(built) == (ROWS, ROWS, 0, 0)
    assert scalar(built, f"SELECT min(time_hour_utc) FROM warehouse.fct_flights WHERE "
                  f"flight_date = '{DAY}'").isoformat() == "2013-01-02T10:00:00"


def test_stray_field_far_into_a_large_file_is_quarantined(built):
    header, *rows = lines(built)
    many = (rows * 30)[:25_000]  # more lines than DuckDB's sniffer samples
    many[24_000] += ",STRAY"
    write(built, [header, *many])
    assert rerun(built).success
    assert assert_conserved(built) == (25_000, ROWS, 1, 25_000 - ROWS - 1)


def test_odd_extra_column_names_are_kept(built):
    header, *rows = lines(built)
    write(built, [header + ',pilot\'s "note"'] + [r + ",x" for r in rows])
    assert rerun(built).success
    assert "pilot's" in scalar(built, "SELECT any_value(_extra) FROM raw.flights WHERE "
                               f"partition_date = '{DAY}'")
    assert assert_conserved(built) == (ROWS, ROWS, 0, 0)


def test_a_flight_delivered_twice_with_another_delay_is_a_conflicting_duplicate(built):
    header, *rows = lines(built)
    names = header.split(",")
    at, sched = names.index("dep_delay"), names.index("sched_dep_time")
    fields = next(r.split(",") for r in rows if r.split(",")[at] not in ("NA", "30"))
    original = fields[at]
    fields[at] = "30"  # the same flight (date, carrier, number, origin, schedule), another delay
    write(built, [header, *rows, ",".join(fields)])
    result = rerun(built)
    assert result.success  # a warning: nothing downstream stops
    outcomes = check_outcomes(result)
    assert outcomes[("warehouse/fct_flights", "conflicting_duplicates")] is False
    assert outcomes[("warehouse/fct_flights", "conservation")] is True
    assert assert_conserved(built) == (ROWS + 1, ROWS, 0, 1)  # still one row per flight
    assert conflicting(built) == 1
    check = conflicts_check(result)
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["conflicting_duplicates"].value == 1
    assert check.metadata["by_partition"].value == {DAY: 1}
    sample = check.metadata["sample"].value
    carrier, flight = fields[names.index("carrier")], fields[names.index("flight")]
    (row,) = [line for line in sample.splitlines() if f" {carrier} " in line]
    assert f" {flight} " in row and fields[names.index("origin")] in row
    kept = scalar(built, "SELECT dep_delay_min FROM warehouse.fct_flights WHERE flight_date = "
                  f"'{DAY}' AND carrier = ? AND flight = ? AND origin = ? "
                  "AND strftime(sched_dep_ts, '%H%M')::INTEGER = ?",
                  [carrier, int(flight), fields[names.index("origin")],
                   int(fields[sched])])
    dropped = {"30", original} - {str(kept)}
    assert f"dep_delay_min: {kept} kept, {dropped.pop()} dropped" in row
