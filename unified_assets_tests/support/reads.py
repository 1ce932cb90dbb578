"""Reads of a home's warehouse and landing files, read-only, for assertions. No Dagster here:
the unit tier uses it too."""

from __future__ import annotations

import csv
from pathlib import Path

from unified_assets.lib.core import config, database


def query(home: Path, sql: str, params=None) -> list[tuple]:
    conn = database.connect(config.warehouse_path(home), read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def scalar(home: Path, sql: str, params=None):
    return query(home, sql, params)[0][0]


def query_frame(home: Path, sql: str, params=None):
    """A read-only query of the warehouse as a pandas frame."""
    conn = database.connect(config.warehouse_path(home), read_only=True)
    try:
        return conn.execute(sql, params or []).df()
    finally:
        conn.close()


def data_rows(path: Path) -> int:
    """The data rows of a landed CSV file (its header not counted)."""
    with path.open(newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1
