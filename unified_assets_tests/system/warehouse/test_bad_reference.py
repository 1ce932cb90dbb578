"""Bad reference files: each ends in a clear stop or a visible check, and none empties or
silently changes a dimension (the last good one stays)."""

from pathlib import Path

import pytest

from unified_assets_tests.support.reads import query, scalar
from unified_assets_tests.support.runs import check_outcomes, run

SELECTION = ["raw/planes", "warehouse/dim_plane"]


# `built` (conftest.py): Jan 1-3 built, with every dimension: the last good state to keep.


def planes_file(home: Path) -> Path:
    return home / "landing" / "reference" / "planes.csv"


def deliver(home: Path, lines: list[str]) -> None:
    planes_file(home).write_text("\n".join(lines) + "\n")


def dim(home: Path) -> list[tuple]:
    return query(home, "SELECT * EXCLUDE (_source_file, _source_sha256) FROM warehouse.dim_plane "
                       "ORDER BY tailnum")


def rerun(home: Path):
    return run(home, None, None, selection=SELECTION)


def with_year(line: str, year: str) -> str:
    fields = line.split(",")
    fields[1] = year
    return ",".join(fields)


def test_header_only_file_is_refused_and_the_dimension_stays(built):
    before = dim(built)
    header = planes_file(built).read_text().splitlines()[0]
    deliver(built, [header])
    result = rerun(built)
    assert check_outcomes(result)[("warehouse/dim_plane", "dimension_loss")] is False
    assert not result.success
    assert dim(built) == before and len(before) > 3000
    evaluation = next(e for e in result.get_asset_check_evaluations()
                      if e.check_name == "dimension_loss")
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert (meta["rows_before"], meta["rows_after"]) == (len(before), 0)
    assert meta["verdict"] == "empty: refused"


def test_a_file_missing_a_fifth_of_the_planes_is_refused(built):
    before = dim(built)
    header, *rows = planes_file(built).read_text().splitlines()
    deliver(built, [header, *rows[: len(rows) * 4 // 5]])
    result = rerun(built)
    assert check_outcomes(result)[("warehouse/dim_plane", "dimension_loss")] is False
    assert dim(built) == before


def test_a_few_retired_planes_are_accepted(built):
    header, *rows = planes_file(built).read_text().splitlines()
    deliver(built, [header, *rows[:-10]])
    result = rerun(built)
    assert result.success
    assert check_outcomes(result)[("warehouse/dim_plane", "dimension_loss")] is True
    assert scalar(built, "SELECT count(*) FROM warehouse.dim_plane") == len(rows) - 10


def test_conflicting_duplicate_key_is_a_visible_check(built):
    header, first, *rows = planes_file(built).read_text().splitlines()
    other = with_year(first, "1999" if first.split(",")[1] != "1999" else "2001")
    deliver(built, [header, first, *rows, other])
    result = rerun(built)
    assert result.success
    assert check_outcomes(result)[("warehouse/dim_plane", "conflicting_duplicates")] is False
    audit = query(built, "SELECT rows_in, curated, duplicates, conflicting_duplicates FROM "
                         "warehouse.ingest_audit WHERE table_name = 'warehouse.dim_plane'")
    assert audit == [(len(rows) + 2, len(rows) + 1, 1, 1)]


@pytest.mark.parametrize("header_change", [("seats", "seat_count"), ("tailnum", "tail")])
def test_renamed_column_is_a_clear_stop(built, header_change):
    before = dim(built)
    header, *rows = planes_file(built).read_text().splitlines()
    deliver(built, [header.replace(*header_change), *rows])
    result = rerun(built)
    assert not result.success
    error = str(next(e for e in result.all_events if e.is_step_failure).event_specific_data.error)
    assert f"planes.csv lacks column(s) {header_change[0]}" in error
    assert dim(built) == before


def test_malformed_values_in_many_rows_are_refused_with_their_evidence_kept(built):
    before = dim(built)
    header, *rows = planes_file(built).read_text().splitlines()
    broken = [with_year(r, "19x7") if i % 10 == 0 else r for i, r in enumerate(rows)]
    deliver(built, [header, *broken])
    result = rerun(built)
    assert check_outcomes(result)[("warehouse/dim_plane", "quarantine_share")] is False
    assert dim(built) == before
    # The refused write is rolled back, but its quarantined rows stay as evidence.
    kept = query(built, "SELECT count(*), min(reason) FROM warehouse.quarantine_refused "
                        "WHERE table_name = 'warehouse.dim_plane'")
    assert kept == [(len(range(0, len(rows), 10)), "unparseable year: 19x7")]
    # The quarantine of the last good load is unchanged.
    assert scalar(built, "SELECT count(*) FROM warehouse.quarantine "
                         "WHERE table_name = 'warehouse.dim_plane'") == 0


def test_one_malformed_row_is_quarantined_and_counted(built):
    header, first, *rows = planes_file(built).read_text().splitlines()
    deliver(built, [header, with_year(first, "nineteen"), *rows])
    result = rerun(built)
    assert result.success
    assert query(built, "SELECT rows_in, curated, quarantined FROM warehouse.ingest_audit "
                        "WHERE table_name = 'warehouse.dim_plane'") == [
        (len(rows) + 1, len(rows), 1)]
    assert scalar(built, "SELECT reason FROM warehouse.quarantine WHERE table_name = "
                         "'warehouse.dim_plane'") == "unparseable year: nineteen"
