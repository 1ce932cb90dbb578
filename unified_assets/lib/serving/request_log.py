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
`errors` and logged once per kind; the thread carries on, and what was queued stays queued.

The queue is bounded: when the requests score rows faster than the thread writes them and
`max_queued_rows` (30,000, three of the largest requests; about 100 MB) are waiting, a request's
rows are not logged but counted in `dropped` (and told to `on_problem`, and so to /metrics), so
a flood costs the monitoring some rows, never the service its memory. Lines are encoded by
pydantic-core, several times faster than `json`, and the thread lets requests in every 128
lines (about a millisecond).
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
from typing import TYPE_CHECKING

from pydantic_core import to_json

if TYPE_CHECKING:  # imported where used: the prediction service never loads pandas
    import pandas as pd


REQUESTS = "requests"
log = logging.getLogger(__name__)


def log_dir(home: Path) -> Path:
    return Path(home) / "online" / REQUESTS


def arrival_path(home: Path, day: date, worker: int | None = None) -> Path:
    """A day's file; each worker of `serve --workers N` writes its own (`<day>.w<k>.jsonl`)."""
    suffix = "" if worker is None else f".w{worker}"
    return log_dir(home) / f"{day.isoformat()}{suffix}.jsonl"


def _today() -> date:
    return datetime.now(UTC).date()


class RequestLog:
    """Appends records to the current arrival day's file from a background thread."""

    def __init__(self, home: Path, sync_every_s: float = 0.2, write_every_s: float = 0.05,
                 today=_today, worker: int | None = None, max_queued_rows: int = 30_000,
                 on_problem=lambda kind, count: None):
        self.home = Path(home)
        self.worker = worker
        self.max_queued_rows = max_queued_rows
        self.on_problem = on_problem  # ("dropped_rows", rows) or ("failed_writes", 1)
        self.dropped = 0
        self._queued_rows = 0
        self._count_lock = threading.Lock()
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

    def write(self, records: Iterable[tuple[date, dict]], rows: int = 1) -> bool:
        """Queue (scored day, record) pairs, or a generator of `rows` of them that the log
        thread runs; returns at once. False (the rows dropped and counted) when the queue is
        full."""
        with self._count_lock:
            full = self._queued_rows + rows > self.max_queued_rows
            if full:
                self.dropped += rows
            else:
                self._queued_rows += rows
        if full:
            self._report("dropped", f"the queue holds {self.max_queued_rows} rows: the rows of "
                         "requests are dropped (counted) until it drains")
            self.on_problem("dropped_rows", rows)
            return False
        self._pending.append((records, rows))
        return True

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
            path = arrival_path(self.home, day, self.worker)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle, self._day = path.open("ab"), day
        return self._handle

    def _close_file(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        self._report(type(exc).__name__, f"a write failed ({type(exc).__name__}: {exc})")
        self.on_problem("failed_writes", 1)

    def _report(self, kind: str, what: str) -> None:
        if kind not in self._reported:
            self._reported.add(kind)
            log.error("request log: %s; counting the next ones", what)

    def _run(self) -> None:
        last_sync = time.monotonic()
        while True:
            closing = self._closing.wait(self.write_every_s)
            try:
                if self._pending:
                    handle = self._file()
                    while self._pending:
                        records, rows = self._pending.popleft()
                        try:
                            for written, (day, record) in enumerate(records, 1):
                                handle.write(to_json({"day": day} | record, fallback=str)
                                             + b"\n")
                                if written % 128 == 0:  # about 1 ms of encoding: a request
                                    time.sleep(0)  # gets the GIL in between
                        finally:
                            with self._count_lock:
                                self._queued_rows -= rows
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
    import pandas as pd  # the monitoring reads the log; the service that writes it never

    frame = pd.DataFrame(rows)
    if len(frame):
        frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame


def read_day(home: Path, day: date) -> pd.DataFrame:
    """A scored day's logged online predictions (see `read_days`)."""
    return read_days(home, [day])
