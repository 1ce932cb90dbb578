"""The DuckDB warehouse file: connections with a bounded wait for the lock, and transactions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

LAYERS = ("raw", "warehouse", "marts", "features", "serving", "monitoring")


def connect(
    database: Path, read_only: bool = False, timeout_s: float = 120.0
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting (bounded, with backoff) while another process holds the lock."""
    database = Path(database)
    if not read_only:
        database.parent.mkdir(parents=True, exist_ok=True)
    deadline, delay = time.monotonic() + timeout_s, 0.05
    while True:
        try:
            return _open(database, read_only)
        except duckdb.Error as exc:
            if "lock" not in str(exc).lower() or time.monotonic() + delay > deadline:
                raise RuntimeError(
                    f"could not open {database} ({'read' if read_only else 'write'}): {exc}"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _open(database: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Attach the file under the catalog name `wh` and use it.

    The file is `warehouse.duckdb` and one of its schemas is `warehouse`; opened directly, the
    catalog would also be called `warehouse` and `warehouse.x` would be ambiguous.
    """
    conn = duckdb.connect(":memory:")
    try:
        mode = " (READ_ONLY)" if read_only else ""
        conn.execute(f"ATTACH '{database}' AS wh{mode}")
        conn.execute("USE wh")
    except BaseException:
        conn.close()
        raise
    return conn


class Transaction:
    """An open write: committed when its block ends, unless rolled back on purpose."""

    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.conn = conn
        self.rolled_back = False

    def rollback(self) -> None:
        """Discard everything written so far: the tables keep their last good state."""
        if not self.rolled_back:
            self.conn.execute("ROLLBACK")
            self.rolled_back = True


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[Transaction]:
    """All or nothing: a failure (or a killed process) leaves the previous state intact."""
    conn.execute("BEGIN TRANSACTION")
    tx = Transaction(conn)
    try:
        yield tx
    except BaseException:
        tx.rollback()
        raise
    if not tx.rolled_back:
        conn.execute("COMMIT")


def ensure_schemas(conn: duckdb.DuckDBPyConnection) -> None:
    for layer in LAYERS:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")


def table_exists(conn: duckdb.DuckDBPyConnection, fqn: str) -> bool:
    schema, name = fqn.split(".")
    return bool(
        conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema=? AND table_name=?",
            [schema, name],
        ).fetchone()[0]
    )
