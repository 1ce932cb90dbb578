"""Scenario files: planted changes to the landing files, applied to each file as it lands.

A scenario says what an upstream system (or the world behind it) does differently from a day
on: flights run late at one airport, a carrier stops flying, a weather feed reports Celsius, a
sensor sticks, arrivals stop being reported. Its edits rewrite the day's landing file before
anything reads it, so the platform sees exactly what such an upstream system would send.

The YAML format is part of the public contract (docs/scenarios.md):

    name: ewr_afternoon_slowdown
    description: ...
    start: 2013-06-10          # first landed day the edits apply to
    end: 2013-08-31            # optional, inclusive
    edits:
      - table: flights         # flights | weather
        where: "origin = 'EWR' AND hour >= 14"   # optional: DuckDB SQL over the file's columns
        shift_minutes: 35      # or set: {column: SQL expression}, or drop: "SQL condition"

A file is checked whole before anything runs: every error names its edit.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import yaml

from unified_assets.lib.raw.landing import COLUMNS, NUMERIC, daily_file

TABLES = ("flights", "weather")
KINDS = ("shift_minutes", "set", "drop")
DECIMALS = {"weather": {"temp", "dewp", "humid", "wind_speed", "wind_gust", "precip",
                        "pressure", "visib"}}
"""Landing columns that carry decimals; the other numeric columns are whole numbers."""
CLOCK = ("dep_time", "arr_time")  # hhmm local clock times that a shift moves
DELAYS = ("dep_delay", "arr_delay")  # minutes that a shift adds to
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SHIPPED = Path(__file__).resolve().parents[3] / "scenarios"
"""The scenario files the project ships (docs/scenarios.md)."""


class ScenarioError(ValueError):
    """A scenario file that cannot be applied as written."""


def column_type(table: str, column: str) -> str:
    if column in DECIMALS.get(table, ()):
        return "DOUBLE"
    return "BIGINT" if column in NUMERIC[table] else "VARCHAR"


@dataclass(frozen=True)
class Edit:
    """One edit: rows of `table` matching `where` shifted, set or dropped."""

    table: str
    where: str | None
    kind: str  # shift_minutes | set | drop
    shift_minutes: int = 0
    set: dict[str, str] = field(default_factory=dict)
    drop: str | None = None

    def describe(self) -> str:
        what = {"shift_minutes": f"shift {self.shift_minutes:+d} min",
                "set": "set " + ", ".join(f"{c} = {e}" for c, e in self.set.items()),
                "drop": f"drop {self.drop}"}[self.kind]
        return f"{self.table}: {what}" + (f" where {self.where}" if self.where else "")

    def condition(self) -> str:
        parts = [f"({p})" for p in (self.where, self.drop) if p]
        return " AND ".join(parts) or "true"

    def statement(self) -> str:
        """The SQL that applies the edit to the file's rows in table `landed`."""
        if self.kind == "drop":
            return f"DELETE FROM landed WHERE {self.condition()}"
        if self.kind == "set":
            sets = [f'"{c}" = CAST(({e}) AS {column_type(self.table, c)})'
                    for c, e in self.set.items()]
        else:
            m = self.shift_minutes
            sets = [f"{c} = {c} + {m}" for c in DELAYS] + [
                # hhmm clock time moved by m minutes, past midnight correctly (24:00 is 2400)
                f"{c} = CASE WHEN {c} IS NULL THEN NULL ELSE coalesce(nullif("
                f"(((({c} // 100) * 60 + {c} % 100 + {m}) % 1440 + 1440) % 1440) // 60 * 100 + "
                f"(((({c} // 100) * 60 + {c} % 100 + {m}) % 1440 + 1440) % 1440) % 60, 0), 2400) "
                "END" for c in CLOCK
            ]
        return f"UPDATE landed SET {', '.join(sets)} WHERE {self.condition()}"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    start: date
    end: date | None
    edits: tuple[Edit, ...]
    sha256: str
    path: str = ""

    def applies(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def tables(self) -> list[str]:
        return sorted({e.table for e in self.edits})


def _day(value, what: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ScenarioError(f"{what}: {value!r} is not a day (YYYY-MM-DD)") from None


def _sql_text(value, what: str) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ScenarioError(f"{what}: expected a DuckDB SQL expression as text, got {value!r}")
    text = str(value).strip()
    if not text:
        raise ScenarioError(f"{what}: empty")
    return text


def _edit(raw, n: int) -> Edit:
    where = f"edit {n}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a mapping with table and one of {KINDS}")
    unknown = set(raw) - {"table", "where", *KINDS}
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: table, where, "
                            f"{', '.join(KINDS)}")
    table = raw.get("table")
    if table not in TABLES:
        raise ScenarioError(f"{where}: table must be one of {TABLES}, not {table!r}")
    where = f"edit {n} ({table})"
    kinds = [k for k in KINDS if k in raw]
    if len(kinds) != 1:
        raise ScenarioError(f"{where}: exactly one of {', '.join(KINDS)} is needed, "
                            f"found {kinds or 'none'}")
    kind = kinds[0]
    condition = None if raw.get("where") is None else _sql_text(raw["where"], f"{where}: where")
    if kind == "shift_minutes":
        minutes = raw[kind]
        if table != "flights":
            raise ScenarioError(f"{where}: shift_minutes applies to flights only")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes == 0 \
                or abs(minutes) >= 1440:
            raise ScenarioError(f"{where}: shift_minutes must be a whole number of minutes, "
                                f"not 0, under a day; got {minutes!r}")
        return Edit(table, condition, kind, shift_minutes=minutes)
    if kind == "set":
        sets = raw[kind]
        if not isinstance(sets, dict) or not sets:
            raise ScenarioError(f"{where}: set must map columns to SQL expressions")
        bad = [c for c in sets if c not in COLUMNS[table]]
        if bad:
            raise ScenarioError(f"{where}: set names unknown column(s) {bad}; {table} has "
                                f"{', '.join(COLUMNS[table])}")
        return Edit(table, condition, kind,
                    set={c: _sql_text(e, f"{where}: set {c}") for c, e in sets.items()})
    return Edit(table, condition, kind, drop=_sql_text(raw[kind], f"{where}: drop"))


def _try(edit: Edit, n: int) -> None:
    """Run the edit on an empty table of the landing columns: a wrong column, type or syntax
    is an error now, not on the first day it applies."""
    conn = duckdb.connect()
    try:
        columns = ", ".join(f'"{c}" {column_type(edit.table, c)}' for c in COLUMNS[edit.table])
        conn.execute(f"CREATE TABLE landed ({columns})")
        conn.execute(edit.statement())
    except duckdb.Error as exc:
        raise ScenarioError(f"edit {n} ({edit.describe()}): {str(exc).splitlines()[0]}") from None
    finally:
        conn.close()


def parse(text: str, path: str = "<text>") -> Scenario:
    """The scenario in `text`, checked whole; ScenarioError names what is wrong."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not YAML: {exc}") from None
    try:
        return _scenario(raw, text, path)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None


def _scenario(raw, text: str, path: str) -> Scenario:
    if not isinstance(raw, dict):
        raise ScenarioError("expected a mapping with name, start and edits")
    unknown = set(raw) - {"name", "description", "start", "end", "edits"}
    if unknown:
        raise ScenarioError(f"unknown key(s) {sorted(unknown)}; allowed: name, description, "
                            "start, end, edits")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ScenarioError(f"name must be lower-case letters, digits, _ or -, got {name!r}")
    if "start" not in raw:
        raise ScenarioError("start (the first landed day the edits apply to) is missing")
    start = _day(raw["start"], "start")
    end = None if raw.get("end") is None else _day(raw["end"], "end")
    if end is not None and end < start:
        raise ScenarioError(f"end {end} is before start {start}")
    edits = raw.get("edits")
    if not isinstance(edits, list) or not edits:
        raise ScenarioError("edits must be a non-empty list")
    parsed = tuple(_edit(e, n) for n, e in enumerate(edits, 1))
    for n, edit in enumerate(parsed, 1):
        _try(edit, n)
    description = raw.get("description") or ""
    return Scenario(name, str(description).strip(), start, end, parsed,
                    hashlib.sha256(text.encode()).hexdigest(), path)


def load(path: Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    return parse(text, str(path))


def apply(scenario: Scenario, home: Path, day: date) -> list[dict]:
    """Rewrite the day's landed files with the scenario's edits (when it applies that day);
    returns one entry per edit with the rows it touched."""
    if not scenario.applies(day):
        return []
    done = []
    for table in scenario.tables():
        path = daily_file(home, table, day)
        if path is None:
            continue
        edits = [(n, e) for n, e in enumerate(scenario.edits, 1) if e.table == table]
        done += _rewrite(path, table, edits, day)
    return done


def _rewrite(path: Path, table: str, edits: list[tuple[int, Edit]], day: date) -> list[dict]:
    """Apply the edits to one file. The edits see typed columns; a cell they did not change
    keeps its text byte for byte (`0` stays `0`, not `0.0`)."""
    columns = COLUMNS[table]
    quoted = [f'"{c}"' for c in columns]
    conn = duckdb.connect()
    done = []
    try:
        source = (f"read_csv('{path}', header = true, nullstr = 'NA', all_varchar = true)"
                  if path.suffix == ".csv" else f"read_parquet('{path}')")
        conn.execute(f"CREATE TABLE original AS SELECT row_number() OVER () AS _row, "
                     f"{', '.join(f'CAST({q} AS VARCHAR) AS {q}' for q in quoted)} "
                     f"FROM {source}")
        typed = ", ".join(f"TRY_CAST({q} AS {column_type(table, c)}) AS {q}"
                          for c, q in zip(columns, quoted, strict=True))
        conn.execute(f"CREATE TABLE landed AS SELECT _row, {typed} FROM original")
        conn.execute("CREATE TABLE before AS SELECT * FROM landed")
        for n, edit in edits:
            rows = conn.execute(f"SELECT count(*) FROM landed WHERE {edit.condition()}"
                                ).fetchone()[0]
            conn.execute(edit.statement())
            done.append({"day": str(day), "table": table, "edit": n, "rows": int(rows),
                         "what": edit.describe()})
        cells = ", ".join(f"CASE WHEN l.{q} IS NOT DISTINCT FROM b.{q} THEN o.{q} "
                          f"ELSE CAST(l.{q} AS VARCHAR) END AS {q}" for q in quoted)
        tmp = path.with_name(f".{path.name}.scenario")
        fmt = "(HEADER, DELIMITER ',', NULLSTR 'NA')" if path.suffix == ".csv" else \
            "(FORMAT parquet)"
        conn.execute(f"COPY (SELECT {cells} FROM landed l JOIN before b USING (_row) "
                     f"JOIN original o USING (_row) ORDER BY _row) TO '{tmp}' {fmt}")
        os.replace(tmp, path)
    finally:
        conn.close()
    return done
