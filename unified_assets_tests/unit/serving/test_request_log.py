"""The online request log (lib/serving/request_log.py): files by arrival day, one open at a
time, read back by scored day."""

import time
from datetime import date

from unified_assets.lib.serving import request_log


def _wait(log: request_log.RequestLog, predicate, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_files_follow_the_arrival_day_not_the_scored_days(tmp_path):
    today = [date(2026, 12, 7)]
    log = request_log.RequestLog(tmp_path, today=lambda: today[0])
    # a thousand distinct scored days in one request: one file, the arrival day's
    log.write((date(2040, 1, 1).fromordinal(date(2040, 1, 1).toordinal() + i), {"i": i})
              for i in range(1_000))
    folder = request_log.log_dir(tmp_path)
    first = folder / "2026-12-07.jsonl"
    _wait(log, lambda: first.exists() and len(first.read_text().splitlines()) == 1_000)
    assert log.open_files == 1
    today[0] = date(2026, 12, 8)  # midnight UTC passes: the log moves on, the old file closes
    log.write([(date(2013, 1, 13), {"request_id": "late"})])
    _wait(log, lambda: (folder / "2026-12-08.jsonl").exists())
    log.close()
    assert sorted(p.name for p in folder.iterdir()) == ["2026-12-07.jsonl", "2026-12-08.jsonl"]
    assert log.open_files == 0 and log.errors == 0
    both = request_log.read_days(tmp_path, [date(2040, 1, 1), date(2013, 1, 13)])
    assert sorted(both["day"].astype(str)) == ["2013-01-13", "2040-01-01"]
    assert len(request_log.read_day(tmp_path, date(2041, 1, 1))) == 1
    assert request_log.read_day(tmp_path, date(2000, 1, 1)).empty


def test_a_failed_write_is_counted_and_nothing_queued_is_lost(tmp_path):
    blocker = tmp_path / "online"
    blocker.write_text("a file where the log folder should be")
    log = request_log.RequestLog(tmp_path)
    log.write([(date(2013, 1, 1), {"i": 1})])
    _wait(log, lambda: log.errors >= 1)  # tried again every write interval, counted each time
    blocker.unlink()
    log.write([(date(2013, 1, 1), {"i": 2})])
    _wait(log, lambda: len(request_log.read_day(tmp_path, date(2013, 1, 1))) == 2)
    log.close()
    assert list(request_log.read_day(tmp_path, date(2013, 1, 1))["i"]) == [1, 2]


def test_a_full_queue_drops_and_counts_rows_instead_of_growing(tmp_path):
    told = []
    log = request_log.RequestLog(tmp_path, write_every_s=30, max_queued_rows=5,
                                 on_problem=lambda kind, n: told.append((kind, n)))
    assert log.write([(date(2013, 1, 1), {"i": i}) for i in range(3)], rows=3)
    assert not log.write([(date(2013, 1, 1), {"i": 9}) for _ in range(3)], rows=3)  # 6 > 5
    assert log.write([(date(2013, 1, 1), {"i": 3})], rows=1)  # what still fits is kept
    assert log.dropped == 3 and told == [("dropped_rows", 3)]
    log.close()  # writes what was queued
    assert list(request_log.read_day(tmp_path, date(2013, 1, 1))["i"]) == [0, 1, 2, 3]
