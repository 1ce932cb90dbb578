"""Opening the warehouse (lib/core/database.py) in this process: which errors are retried, and
how long the waits between tries are. The lock itself, held by other processes, is tested in
system/concurrency/."""

import random

import pytest

from unified_assets.lib.core import database


def test_errors_other_than_the_lock_are_not_retried(tmp_path):
    with pytest.raises(RuntimeError, match="could not open") as raised:
        database.connect(tmp_path / "missing.duckdb", read_only=True, timeout_s=600)
    assert not isinstance(raised.value, database.WarehouseLockedError)


def test_the_backoff_is_bounded_and_jittered():
    first, second = random.Random(1), random.Random(2)
    waits = [database.backoff(n, first) for n in range(30)]
    assert all(0 < w <= database.LONGEST_WAIT_S for w in waits)
    assert waits[0] <= database.FIRST_WAIT_S and max(waits) > database.LONGEST_WAIT_S / 2
    assert waits != [database.backoff(n, second) for n in range(30)]  # runs do not lockstep
    assert len(set(waits[10:])) == 20  # jittered even once the cap is reached




def test_a_rolled_back_write_keeps_only_its_evidence(tmp_path):
    conn = database.connect(tmp_path / "w.duckdb")
    conn.execute("CREATE TABLE facts (x INTEGER)")
    conn.execute("INSERT INTO facts VALUES (1)")
    kept = []
    with database.transaction(conn) as tx:
        tx.keep_on_rollback(
            lambda c: c.execute("SELECT x FROM facts ORDER BY x").fetchall(),
            lambda c, rows: kept.extend([rows, c.execute("SELECT count(*) FROM facts").fetchone()]),
        )
        conn.execute("INSERT INTO facts VALUES (2)")
        tx.rollback()
    assert kept == [[(1,), (2,)], (1,)]  # read inside the write, restored after it
    assert conn.execute("SELECT x FROM facts").fetchall() == [(1,)]


def test_a_committed_write_does_not_run_its_evidence_hooks(tmp_path):
    conn = database.connect(tmp_path / "w.duckdb")
    with database.transaction(conn) as tx:
        tx.keep_on_rollback(lambda c: 1 / 0, lambda c, v: 1 / 0)
        conn.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
