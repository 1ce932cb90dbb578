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


