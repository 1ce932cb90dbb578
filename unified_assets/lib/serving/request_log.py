"""The online request log: every prediction the service makes, one JSON line each, appended to
`$UNIFIED_ASSETS_HOME/online/requests/<arrival day>.jsonl`, the UTC day the server received the
request. Nothing a client sends picks a file: one file is open at a time, and the log moves to
the next file when the server's clock passes midnight UTC. Each line carries the scored day
(the flight's date, or the forecaster's feature day) as `day`, so the daily monitoring reads a
scored day's online traffic from the files of the days it could have arrived on.

A line: scored day, request id, received time (UTC), model, model version, the scored row's key,
its features, prediction, flags and the request's latency. Lines are written by one background
thread that wakes every `write_every_s` (0.05 s) and writes what requests queued: a request
appends to a queue and returns, it never waits on the disk nor wakes a thread, and the records
may be a generator that the log thread runs, so even building them is off the request's path.
The thread flushes after each batch and fsyncs at most every `sync_every_s` (0.2 s): a crash
loses at most the last quarter of a second. A write that fails (a full disk, say) is counted in
`errors` and logged once per kind; the thread carries on.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

REQUESTS = "requests"
log = logging.getLogger(__name__)


def log_dir(home: Path) -> Path:
    return Path(home) / "online" / REQUESTS


def arrival_path(home: Path, day: date) -> Path:
    return log_dir(home) / f"{day.isoformat()}.jsonl"


def _today() -> date:
    return datetime.now(UTC).date()


class RequestLog:
    """Appends records to the current arrival day's file from a background thread."""

    def __init__(self, home: Path, sync_every_s: float = 0.2, write_every_s: float = 0.05,
                 today=_today):
        self.home = Path(home)
        self.sync_every_s = sync_every_s
        self.write_every_s = write_every_s
        self.today = today  # the server's UTC day (a test moves it across midnight)
        self.errors = 0
        self._pending: deque = deque()  # appends and pops are atomic: no lock, no wake-up
        self._closing = threading.Event()
        self._day: date | None = None
        self._handle = None
        self._reported: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def write(self, records: Iterable[tuple[date, dict]]) -> None:
        """Queue (scored day, record) pairs, or a generator of them that the log thread runs;
        returns at once."""
        self._pending.append(records)

    def close(self) -> None:
        """Write what is queued, sync and close the file."""
        self._closing.set()
        self._thread.join(timeout=30)

    @property
    def open_files(self) -> int:
        return 0 if self._handle is None else 1

    def _file(self):
        day = self.today()
        if day != self._day or self._handle is None:
            self._close_file()
            path = arrival_path(self.home, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle, self._day = path.open("a", encoding="utf-8"), day
        return self._handle

    def _close_file(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        kind = type(exc).__name__
        if kind not in self._reported:
            self._reported.add(kind)
            log.error("request log: a write failed (%s: %s); counting the next ones", kind, exc)

    def _run(self) -> None:
        last_sync = time.monotonic()
        while True:
            closing = self._closing.wait(self.write_every_s)
            try:
                if self._pending:
                    handle = self._file()
                    while self._pending:
                        for day, record in self._pending.popleft():
                            handle.write(json.dumps({"day": day} | record, default=str) + "\n")
                            time.sleep(0)  # lets a request in between two records (the GIL)
                    handle.flush()
                if closing:
                    self._close_file()
                    break
                if self._handle is not None and time.monotonic() - last_sync >= self.sync_every_s:
                    os.fsync(self._handle.fileno())
                    last_sync = time.monotonic()
            except (OSError, ValueError, TypeError) as exc:
                self._failed(exc)
                self._handle = None  # reopened on the next write
                if closing:
                    break


def read_days(home: Path, days: list[date]) -> pd.DataFrame:
    """The logged online predictions of these scored days, one row per line, `day` a date
    (empty when none). Every arrival file is read: a historical day may be scored long after
    it. A last line cut short by a crash is skipped."""
    wanted = {d.isoformat() for d in days}
    rows = []
    folder = log_dir(home)
    for path in sorted(folder.glob("*.jsonl")) if folder.exists() else []:
        for line in path.read_text("utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("day") in wanted:
                rows.append(record)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame


def read_day(home: Path, day: date) -> pd.DataFrame:
    """A scored day's logged online predictions (see `read_days`)."""
    return read_days(home, [day])
