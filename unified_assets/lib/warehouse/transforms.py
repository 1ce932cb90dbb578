"""warehouse layer: typed, deduplicated, conformed tables, built in DuckDB SQL.

Each curated table is declared once as a `Curation`: typed columns, quarantine rules, natural
key. One engine turns a declaration into SQL. A row that breaks any rule goes to
`warehouse.quarantine` with every reason and its source file; the valid rows are deduplicated
on the natural key; `warehouse.ingest_audit` records, per partition,
rows in = curated + quarantined + duplicates.

Of the duplicates, `conflicting_duplicates` counts those whose typed values differ from the row
kept for their key (a second delivery of a flight with another dep_delay, say): they are a part
of `duplicates`, never added to it, so 0 <= conflicting_duplicates <= duplicates. An exact
duplicate (every curated column equal) is a duplicate and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb

QUARANTINE = "warehouse.quarantine"
# One row per reason of a quarantined row, without its values ('unparseable dep_delay: abc'
# and 'unparseable dep_delay: 12min' are one kind; dates become <date>).
REASON_KINDS = (
    "regexp_replace(split_part(unnest(string_split(reason, '; ')), ':', 1), "
    "'[0-9]{4}-[0-9]{2}-[0-9]{2}', '<date>', 'g')"
)
AUDIT = "warehouse.ingest_audit"
# The quarantined rows of writes a blocking check refused (rolled back): the evidence stays.
REFUSED = "warehouse.quarantine_refused"

_MACROS = (
    # minutes after midnight of an hhmm clock value such as '517' or '2400'
    "CREATE OR REPLACE TEMP MACRO hhmm_min(x) AS "
    "(TRY_CAST(x AS INTEGER) // 100) * 60 + TRY_CAST(x AS INTEGER) % 100",
    "CREATE OR REPLACE TEMP MACRO bad_clock(x) AS "
    "x IS NOT NULL AND TRY_CAST(x AS INTEGER) IS NOT NULL"
    " AND (TRY_CAST(x AS INTEGER) % 100 >= 60 OR TRY_CAST(x AS INTEGER) NOT BETWEEN 0 AND 2400)",
    "CREATE OR REPLACE TEMP MACRO ymd(y, m, d) AS "
    "TRY(make_date(TRY_CAST(y AS INTEGER), TRY_CAST(m AS INTEGER), TRY_CAST(d AS INTEGER)))",
    "CREATE OR REPLACE TEMP MACRO mod_day(x) AS ((x % 1440) + 1440) % 1440",
)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    expr: str  # SQL over the raw row (alias-free raw column names)


@dataclass(frozen=True)
class Rule:
    when: str  # SQL condition over raw columns and typed columns (typed ones as c_<name>)
    reason: str  # SQL string expression


@dataclass(frozen=True)
class Curation:
    """How one raw table becomes one curated warehouse table."""

    source: str
    target: str
    raw_columns: tuple[str, ...]
    columns: tuple[Column, ...]
    rules: tuple[Rule, ...]
    key: tuple[str, ...]
    partition_column: str | None = None  # typed column equal to the raw partition day

    def ddl(self) -> str:
        cols = ", ".join(f"{c.name} {c.type}" for c in self.columns)
        return (
            f"CREATE TABLE IF NOT EXISTS {self.target} ({cols}, _source_file VARCHAR, "
            "_source_sha256 VARCHAR)"
        )


_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")


def parsed(col: str, sql_type: str) -> Rule:
    """Quarantine a value that is present but is not a `sql_type` (never round or coerce it).

    Integers must be plain digits that fit the type ('517.6', '1e3', '0x1F' are refused, though
    DuckDB's TRY_CAST would accept them); decimals must be finite numbers.
    """
    bad = f"TRY_CAST({col} AS {sql_type}) IS NULL"
    if sql_type in _INTEGER_TYPES:
        bad += f" OR NOT regexp_full_match({col}, '\\s*[+-]?[0-9]+\\s*')"
    elif sql_type == "DOUBLE":
        bad += f" OR NOT isfinite(TRY_CAST({col} AS DOUBLE))"
    return Rule(f"{col} IS NOT NULL AND ({bad})", f"'unparseable {col}: ' || {col}")


def parsed_each(sql_type: str, *cols: str) -> tuple[Rule, ...]:
    """`parsed` for each of `cols`."""
    return tuple(parsed(c, sql_type) for c in cols)


def iso_utc(col: str) -> str:
    """SQL: an ISO UTC text ('2013-01-01T10:00:00Z') as a naive UTC timestamp, NULL if not one."""
    return f"try_strptime({col}, '%Y-%m-%dT%H:%M:%SZ')"


def parsed_utc(col: str) -> Rule:
    """Quarantine an ISO UTC text that does not parse."""
    return Rule(f"{col} IS NOT NULL AND {iso_utc(col)} IS NULL", f"'unparseable {col}: ' || {col}")


def valid_date(typed: str, year: str = "year", month: str = "month", day: str = "day") -> Rule:
    """Quarantine a row whose year, month and day are there but make no date (a 30 February)."""
    return Rule(
        f"{year} IS NOT NULL AND {month} IS NOT NULL AND {day} IS NOT NULL AND c_{typed} IS NULL",
        f"'invalid date: ' || {year} || '-' || {month} || '-' || {day}",
    )


def required(*cols: str) -> tuple[Rule, ...]:
    return tuple(Rule(f"{c} IS NULL", f"'missing {c}'") for c in cols)


def matches(col: str, pattern: str) -> Rule:
    return Rule(
        f"{col} IS NOT NULL AND NOT regexp_full_match({col}, '{pattern}')",
        f"'malformed {col}: ' || {col}",
    )


def within(typed: str, low: float, high: float, label: str) -> Rule:
    return Rule(
        f"c_{typed} IS NOT NULL AND c_{typed} NOT BETWEEN {low} AND {high}",
        f"'implausible {label}: ' || c_{typed}",
    )


def valid_utf8(raw_columns: tuple[str, ...]) -> Rule:
    """Bytes that were not UTF-8 arrive as U+FFFD (see ingest.inspect_file)."""
    joined = "concat_ws('|', " + ", ".join(raw_columns) + ")"
    return Rule(f"contains({joined}, chr(65533))", "'invalid UTF-8 bytes in source row'")


def no_stray_fields() -> Rule:
    """A row with more fields than its file's header (see ingest: `_extra` keys column<N>)."""
    return Rule(
        '_extra IS NOT NULL AND regexp_matches(_extra, \'"column[0-9]+":"\')',
        "'more fields than the header: ' || _extra",
    )


def same_day(typed_date: str) -> Rule:
    return Rule(
        f"c_{typed_date} IS NOT NULL AND c_{typed_date} <> partition_date",
        f"'row dated ' || c_{typed_date} || ' in the file of ' || partition_date",
    )


def _ensure_support_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {QUARANTINE} (table_name VARCHAR, partition_date DATE, "
        "reason VARCHAR, source_file VARCHAR, source_sha256 VARCHAR, record VARCHAR, "
        "quarantined_at TIMESTAMP)"
    )
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {AUDIT} (table_name VARCHAR, partition_date DATE, "
        "rows_in BIGINT, curated BIGINT, quarantined BIGINT, duplicates BIGINT, "
        "audited_at TIMESTAMP, conflicting_duplicates BIGINT)"
    )
    # A warehouse audited before conflicts were counted: the column is added, and its earlier
    # rows keep NULL there (not measured) until their partitions are curated again.
    conn.execute(f"ALTER TABLE {AUDIT} ADD COLUMN IF NOT EXISTS conflicting_duplicates BIGINT")
    install_macros(conn)


def install_macros(conn: duckdb.DuckDBPyConnection) -> None:
    """The SQL helper macros the curation rules and quality specs use (per connection)."""
    for macro in _MACROS:
        conn.execute(macro)


def curate(
    conn: duckdb.DuckDBPyConnection,
    spec: Curation,
    now: datetime,
    start: date | None = None,
    end: date | None = None,
) -> dict[str, int]:
    """Rebuild `spec.target` for partition days [start, end), or whole when unpartitioned.

    Runs inside the caller's transaction. Returns the window's totals. Leaves the temp table
    `_conflicts` on `conn` (see `conflict_sample`): the dropped rows whose values differed.
    """
    _ensure_support_tables(conn)
    conn.execute(spec.ddl())
    partitioned = spec.partition_column is not None
    if not partitioned:
        start = end = None
    params: dict[str, object] = {"now": now}
    if partitioned:
        params |= {"start": start, "end": end}
        src_where = "WHERE partition_date >= $start AND partition_date < $end"
        part_where = "partition_date >= $start AND partition_date < $end"
        tgt_where = f"{spec.partition_column} >= $start AND {spec.partition_column} < $end"
        part_expr = "partition_date"
    else:
        src_where, part_where, tgt_where, part_expr = "", "partition_date IS NULL", "TRUE", "NULL"
    if not partitioned:  # a dimension: its keys before this rebuild, for `dimension_loss`
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE _previous_keys AS "
            f"SELECT DISTINCT {', '.join(spec.key)} FROM {spec.target}"
        )
    for table in (QUARANTINE, AUDIT):
        conn.execute(
            f"DELETE FROM {table} WHERE table_name = $target AND {part_where}",
            {k: v for k, v in params.items() if k != "now"} | {"target": spec.target},
        )
    conn.execute(
        f"DELETE FROM {spec.target} WHERE {tgt_where}",
        {k: v for k, v in params.items() if k in ("start", "end")},
    )

    # TRY_CAST: a value that does not fit becomes NULL here and the rules quarantine its row.
    typed = ", ".join(f"TRY_CAST({c.expr} AS {c.type}) AS c_{c.name}" for c in spec.columns)
    reasons = ", ".join(f"CASE WHEN {r.when} THEN {r.reason} END" for r in spec.rules)
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _typed AS "
        f"SELECT *, {part_expr} AS _part FROM (SELECT *, {typed} FROM {spec.source} {src_where})",
        {k: v for k, v in params.items() if k in ("start", "end")},
    )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _checked AS "
        f"SELECT *, concat_ws('; ', {reasons}) AS _reason FROM _typed"
    )
    record = "to_json(struct_pack(" + ", ".join(f'"{c}" := "{c}"' for c in spec.raw_columns)
    record += "))::VARCHAR"
    conn.execute(
        f"INSERT INTO {QUARANTINE} SELECT $target, _part, _reason, _source_file, _source_sha256, "
        f"{record}, $now FROM _checked WHERE _reason <> ''",
        {"target": spec.target, "now": now},
    )
    names = ", ".join(c.name for c in spec.columns)
    picks = ", ".join(f"c_{c.name}" for c in spec.columns)
    key = ", ".join(f"c_{k}" for k in spec.key)
    filled = " + ".join(f"(c_{c.name} IS NOT NULL)::INTEGER" for c in spec.columns)
    # The row kept for a key: the one with the most curated values present; among equally
    # complete ones, the smallest md5 of its raw record, then the smallest file name. The choice
    # depends on the rows' values only, never on their order in the file or in a scan.
    conn.execute(
        f"INSERT INTO {spec.target} ({names}, _source_file, _source_sha256) "
        f"SELECT {picks}, _source_file, _source_sha256 FROM _checked WHERE _reason = '' "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {filled} DESC, "
        f"md5({record}), _source_file) = 1"
    )
    # Conflicting duplicates: valid rows of a key that arrived more than once whose values
    # differ from the row kept for it (an exact duplicate, like the kept row itself, does not).
    repeated_key = " AND ".join(f"r.c_{k} IS NOT DISTINCT FROM c.c_{k}" for k in spec.key)
    kept_key = " AND ".join(f"t.{k} IS NOT DISTINCT FROM c.c_{k}" for k in spec.key)
    kept = "struct_pack(" + ", ".join(f"{c.name} := t.{c.name}" for c in spec.columns) + ")"
    dropped = "struct_pack(" + ", ".join(f"{c.name} := c.c_{c.name}" for c in spec.columns) + ")"
    kept_where = (
        f"t.{spec.partition_column} >= $start AND t.{spec.partition_column} < $end"
        if partitioned
        else "TRUE"
    )
    differs = ", ".join(
        f"CASE WHEN c.c_{c.name} IS DISTINCT FROM t.{c.name} THEN '{c.name}: ' || "
        f"coalesce(t.{c.name}::VARCHAR, 'NULL') || ' kept, ' || "
        f"coalesce(c.c_{c.name}::VARCHAR, 'NULL') || ' dropped' END"
        for c in spec.columns
    )
    key_names = ", ".join(f"c.c_{k} AS {k}" for k in spec.key)
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _conflicts AS "
        f"WITH repeated AS (SELECT {key} FROM _checked WHERE _reason = '' GROUP BY ALL "
        "HAVING count(*) > 1) "
        f"SELECT c._part AS partition_date, {key_names}, concat_ws('; ', {differs}) "
        "AS differing_values, c._source_file AS source_file "
        f"FROM _checked c SEMI JOIN repeated r ON {repeated_key} "
        f"JOIN {spec.target} t ON {kept_key} "
        f"WHERE c._reason = '' AND {kept_where} AND {kept} IS DISTINCT FROM {dropped}",
        {k: v for k, v in params.items() if k in ("start", "end")},
    )
    days = "SELECT NULL::DATE AS d"
    if partitioned:
        days = (
            "SELECT CAST(range AS DATE) AS d FROM range($start::TIMESTAMP, $end::TIMESTAMP, "
            "INTERVAL 1 DAY)"
        )
    # Duplicates are counted on their own (valid rows minus distinct keys), so the audit's
    # equation rows_in = curated + quarantined + duplicates is a real check, not an identity.
    conn.execute(
        f"INSERT INTO {AUDIT} (table_name, partition_date, rows_in, curated, quarantined, "
        "duplicates, conflicting_duplicates, audited_at) "
        f"WITH days AS ({days}), "
        "ins AS (SELECT _part, count(*) AS n, count(*) FILTER (WHERE _reason <> '') AS q, "
        f"count(*) FILTER (WHERE _reason = '') - count(DISTINCT ({key})) FILTER "
        "(WHERE _reason = '') AS dup FROM _checked GROUP BY _part), "
        f"cur AS (SELECT {spec.partition_column or 'NULL'} AS _part, "
        f"count(*) AS n FROM {spec.target} WHERE {tgt_where} GROUP BY 1), "
        "con AS (SELECT partition_date AS _part, count(*) AS n FROM _conflicts GROUP BY 1) "
        "SELECT $target, d, coalesce(ins.n, 0), coalesce(cur.n, 0), coalesce(ins.q, 0), "
        "coalesce(ins.dup, 0), coalesce(con.n, 0), $now "
        "FROM days LEFT JOIN ins ON ins._part IS NOT DISTINCT FROM days.d "
        "LEFT JOIN cur ON cur._part IS NOT DISTINCT FROM days.d "
        "LEFT JOIN con ON con._part IS NOT DISTINCT FROM days.d",
        {k: v for k, v in params.items() if k in ("start", "end")}
        | {"target": spec.target, "now": now},
    )
    return audit_totals(conn, spec.target, start, end)


def dimension_loss(conn: duckdb.DuckDBPyConnection, spec: Curation) -> dict[str, int]:
    """What the last `curate` of a dimension on this connection did to its keys: how many it
    had before, how many it has now, and how many of the earlier ones are gone."""
    on = " AND ".join(f"p.{k} IS NOT DISTINCT FROM t.{k}" for k in spec.key)
    before, removed = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM {spec.target} t "
        f"WHERE {on})) FROM _previous_keys p"
    ).fetchone()
    after = conn.execute(f"SELECT count(*) FROM {spec.target}").fetchone()[0]
    return {"rows_before": before, "rows_after": after, "keys_removed": removed}


def quarantined_rows(
    conn: duckdb.DuckDBPyConnection, target: str, start: date | None, end: date | None
):
    """The quarantine rows of a window, as an Arrow table (evidence kept if the write is
    refused: see `keep_refused`)."""
    where, params = _audit_window(target, start, end)
    return conn.sql(f"SELECT * FROM {QUARANTINE} WHERE {where}", params=params).to_arrow_table()


def keep_refused(conn: duckdb.DuckDBPyConnection, rows, refused_at: datetime) -> None:
    """File the quarantined rows of a refused write in `warehouse.quarantine_refused`, so a
    stopped load keeps its evidence; a file refused again replaces its earlier rows."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {REFUSED} AS SELECT *, NULL::TIMESTAMP AS refused_at "
        f"FROM {QUARANTINE} LIMIT 0"
    )
    conn.register("_refused_rows", rows)
    try:
        conn.execute(
            f"DELETE FROM {REFUSED} r USING (SELECT DISTINCT table_name, partition_date, "
            "source_sha256 FROM _refused_rows) n WHERE r.table_name = n.table_name AND "
            "r.partition_date IS NOT DISTINCT FROM n.partition_date "
            "AND r.source_sha256 IS NOT DISTINCT FROM n.source_sha256"
        )
        conn.execute(f"INSERT INTO {REFUSED} SELECT *, $at FROM _refused_rows", {"at": refused_at})
    finally:
        conn.unregister("_refused_rows")


def _audit_window(target: str, start: date | None, end: date | None) -> tuple[str, dict]:
    where = (
        "partition_date IS NULL"
        if start is None
        else "partition_date >= $start AND partition_date < $end"
    )
    params = {"target": target} | ({} if start is None else {"start": start, "end": end})
    return f"table_name = $target AND {where}", params


def conservation_breaks(
    conn: duckdb.DuckDBPyConnection, target: str, start: date | None, end: date | None
) -> list[dict]:
    """Partitions where rows in != curated + quarantined + duplicates, or where the conflicting
    duplicates are not a part of the duplicates (should be none)."""
    where, params = _audit_window(target, start, end)
    cur = conn.execute(
        f"SELECT partition_date, rows_in, curated, quarantined, duplicates, "
        f"conflicting_duplicates FROM {AUDIT} WHERE {where} "
        "AND (rows_in <> curated + quarantined + duplicates OR duplicates < 0 "
        "OR conflicting_duplicates NOT BETWEEN 0 AND duplicates)",
        params,
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def quarantine_shares(
    conn: duckdb.DuckDBPyConnection, target: str, start: date | None, end: date | None
) -> list[tuple[date | None, int, int]]:
    """(partition, rows in, rows quarantined) for the window, from the audit."""
    where, params = _audit_window(target, start, end)
    return conn.execute(
        f"SELECT partition_date, rows_in, quarantined FROM {AUDIT} WHERE {where} ORDER BY 1",
        params,
    ).fetchall()


def audit_totals(
    conn: duckdb.DuckDBPyConnection, target: str, start: date | None, end: date | None
) -> dict[str, int]:
    """Sum of the audit over the window: rows in, curated, quarantined, duplicates, and the
    conflicting part of the duplicates."""
    where, params = _audit_window(target, start, end)
    names = ("rows_in", "curated", "quarantined", "duplicates", "conflicting_duplicates")
    sums = ", ".join(f"coalesce(sum({n}), 0)" for n in names)
    totals = conn.execute(f"SELECT {sums} FROM {AUDIT} WHERE {where}", params).fetchone()
    return dict(zip(names, totals, strict=True))


def conflicting_duplicates(
    conn: duckdb.DuckDBPyConnection, target: str, start: date | None, end: date | None
) -> list[tuple[date | None, int]]:
    """(partition, conflicting duplicates) for the window's partitions that have any."""
    where, params = _audit_window(target, start, end)
    return conn.execute(
        f"SELECT partition_date, conflicting_duplicates FROM {AUDIT} WHERE {where} "
        "AND conflicting_duplicates > 0 ORDER BY 1",
        params,
    ).fetchall()


def conflict_sample(conn: duckdb.DuckDBPyConnection, n: int = 20) -> list[dict]:
    """Up to `n` rows dropped by the last `curate` on this connection whose values differed from
    the row kept for their key: partition, key, and each differing value (kept, dropped)."""
    cur = conn.execute(f"SELECT * FROM _conflicts ORDER BY ALL LIMIT {int(n)}")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def top_reasons(
    conn: duckdb.DuckDBPyConnection, target: str, start: date | None, end: date | None, n: int = 10
) -> dict[str, int]:
    """The most frequent quarantine reasons in the window (values stripped)."""
    where, params = _audit_window(target, start, end)
    rows = conn.execute(
        f"SELECT {REASON_KINDS} AS r, count(*) "
        f"FROM {QUARANTINE} WHERE {where} GROUP BY 1 ORDER BY 2 DESC "
        f"LIMIT {n}",
        params,
    ).fetchall()
    return {r: c for r, c in rows}
