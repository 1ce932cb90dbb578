"""The DuckDB warehouse file: connections with a bounded wait for the lock, and transactions."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

LAYERS = ("raw", "warehouse", "marts", "features", "serving", "monitoring")
LOCK_ERROR = "Could not set lock on file"
FIRST_WAIT_S, LONGEST_WAIT_S = 0.05, 2.0
LOCK_TIMEOUT_S = 120.0  # how long a connect waits for another process's lock, by default

log = logging.getLogger(__name__)


class WarehouseLockedError(RuntimeError):
    """Another process kept the warehouse file locked for longer than this one would wait."""


def backoff(attempt: int, rng: random.Random) -> float:
    """Seconds to wait before try `attempt + 1`: doubling from 50 ms up to 2 s, jittered down to
    half so that runs started together do not retry in lockstep."""
    return min(FIRST_WAIT_S * 2**attempt, LONGEST_WAIT_S) * rng.uniform(0.5, 1.0)


def lock_holder(message: str) -> str:
    """The process DuckDB names as holding the lock, with its command line when readable."""
    found = re.search(r"\(PID (\d+)\)", message)
    if not found:
        return "another process"
    pid = found.group(1)
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        command = " ".join(raw.decode(errors="replace").replace("\0", " ").split())
    except OSError:
        command = ""
    return f"PID {pid} ({command[:300]})" if command else f"PID {pid}"


def connect(
    database: Path, read_only: bool = False, timeout_s: float = LOCK_TIMEOUT_S
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting (bounded, jittered backoff) while another process holds it.

    DuckDB lets one process write a file, or several read it, never both. A writer waits for
    readers and writers, a reader for a writer; after `timeout_s` the error names the holder.
    Inside `held(database)` it returns a cursor of the held connection instead.
    """
    database = Path(database)
    if (held_conn := _HELD.get(database.resolve())) is not None:
        return held_conn.cursor()
    if not read_only:
        database.parent.mkdir(parents=True, exist_ok=True)
    mode = "read" if read_only else "write"
    started = time.monotonic()
    deadline, rng = started + timeout_s, random.Random()
    attempt = 0
    while True:
        try:
            return _open(database, read_only)
        except duckdb.Error as exc:
            if LOCK_ERROR not in str(exc):
                raise RuntimeError(f"could not open {database} ({mode}): {exc}") from exc
            left = deadline - time.monotonic()
            if left <= 0:
                raise WarehouseLockedError(
                    f"could not open {database} ({mode}): it is locked by "
                    f"{lock_holder(str(exc))}; gave up after waiting "
                    f"{time.monotonic() - started:.1f} s (lock timeout {timeout_s:g} s). DuckDB "
                    "lets one process open the file for writing, and only while no other process "
                    "has it open: let that run finish, close that session (a notebook or query "
                    "tool holding a connection), or allow a longer wait "
                    "(UNIFIED_ASSETS_LOCK_TIMEOUT_S, or the settings' lock_timeout_s)."
                ) from exc
            if attempt == 0:
                log.warning(
                    "%s is locked by %s; waiting up to %g s to open it (%s)",
                    database, lock_holder(str(exc)), timeout_s, mode,
                )
            time.sleep(min(backoff(attempt, rng), left))
            attempt += 1


@contextmanager
def held(database: Path) -> Iterator[None]:
    """Open the warehouse once for everything this process does inside the block.

    Each `connect` in the block gets a cursor of one writable connection instead of opening the
    file (~20 ms each time; a step opens it at least once). No other process can open the file
    until the block ends, so it suits one process doing sequential work: the replay.
    """
    key = Path(database).resolve()
    if key in _HELD:
        yield
        return
    conn = connect(key)
    _HELD[key] = conn
    try:
        yield
    finally:
        del _HELD[key]
        conn.close()


_HELD: dict[Path, duckdb.DuckDBPyConnection] = {}


def checkpoint(database: Path) -> None:
    """Write the held warehouse's log into its file, so that a copy of the file alone is the
    whole warehouse (the replay's saved states)."""
    conn = _HELD.get(Path(database).resolve())
    if conn is None:
        raise RuntimeError(f"{database} is not held by this process: checkpoint inside held()")
    conn.execute("CHECKPOINT")


def _open(database: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(database), read_only=read_only)


class Transaction:
    """An open write: committed when its block ends, unless rolled back on purpose."""

    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.conn = conn
        self.rolled_back = False
        self._evidence: list[tuple[Callable, Callable]] = []

    def keep_on_rollback(self, capture: Callable, restore: Callable) -> None:
        """Evidence that must outlive a refused write (the rows a quarantine held, say):
        `capture(conn)` reads it before the rollback, `restore(conn, captured)` writes it after,
        in its own commit."""
        self._evidence.append((capture, restore))

    def rollback(self) -> None:
        """Discard everything written so far: the tables keep their last good state."""
        if not self.rolled_back:
            captured = []
            for capture, restore in self._evidence:
                try:
                    captured.append((restore, capture(self.conn)))
                except duckdb.Error:  # the write broke before its evidence existed
                    continue
            self.conn.execute("ROLLBACK")
            self.rolled_back = True
            for restore, value in captured:
                try:
                    restore(self.conn, value)
                except duckdb.Error as exc:  # the evidence is lost, the rollback is not
                    log.warning("evidence of a refused write not kept: %s", exc)


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
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name=? AND table_name=?",
            [schema, name],
        ).fetchall()[0][0]  # fetched whole: DuckDB refuses the next statement otherwise
    )
