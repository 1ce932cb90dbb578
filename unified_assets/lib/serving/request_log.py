"""The online request log: every prediction the service makes, one JSON line each, in
append-only files under `$UNIFIED_ASSETS_HOME/online/requests/`, one file per scored day (the
flight's date, or the forecaster's feature day), so the daily monitoring reads a day's online
traffic as it reads a day's batch predictions.

A line: request id, received time (UTC), model, model version, the scored row's key, its
features, prediction, flags and the request's latency. Lines are written by one background
thread that wakes every `write_every_s` (0.05 s) and writes what requests queued: a request
appends to a queue and returns, it never waits on the disk nor wakes a thread, and the records
may be a generator that the log thread runs, so even building them is off the request's path.
Lines are flushed as they are written and fsync'ed within `sync_every_s` (0.2 s); a crash
loses at most the last quarter of a second.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pandas as pd

REQUESTS = "requests"


def log_dir(home: Path) -> Path:
    return Path(home) / "online" / REQUESTS


def day_path(home: Path, day: date) -> Path:
    return log_dir(home) / f"{day.isoformat()}.jsonl"


class RequestLog:
    """Appends records to the day files from a background thread."""

    def __init__(self, home: Path, sync_every_s: float = 0.2, write_every_s: float = 0.05):
        self.home = Path(home)
        self.sync_every_s = sync_every_s
        self.write_every_s = write_every_s
        self._pending: deque = deque()  # appends and pops are atomic: no lock, no wake-up
        self._closing = threading.Event()
        self._files: dict[date, object] = {}
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def write(self, records: Iterable[tuple[date, dict]]) -> None:
        """Queue (scored day, record) pairs, or a generator of them that the log thread runs;
        returns at once."""
        self._pending.append(records)

    def close(self) -> None:
        """Write what is queued, sync and close the files."""
        self._closing.set()
        self._thread.join(timeout=30)

    def _file(self, day: date):
        handle = self._files.get(day)
        if handle is None:
            path = day_path(self.home, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = self._files[day] = path.open("a", encoding="utf-8")
        return handle

    def _sync(self) -> None:
        for handle in self._files.values():
            handle.flush()
            os.fsync(handle.fileno())

    def _run(self) -> None:
        last_sync = time.monotonic()
        while True:
            closing = self._closing.wait(self.write_every_s)
            wrote = bool(self._pending)
            while self._pending:
                for day, record in self._pending.popleft():
                    self._file(day).write(json.dumps(record, default=str) + "\n")
                    time.sleep(0)  # lets a request in between two records (frees the GIL)
            if wrote:
                for handle in self._files.values():
                    handle.flush()
            if closing:
                break
            if time.monotonic() - last_sync >= self.sync_every_s:
                self._sync()
                last_sync = time.monotonic()
        self._sync()
        for handle in self._files.values():
            handle.close()
        self._files.clear()


def read_day(home: Path, day: date) -> pd.DataFrame:
    """A day's logged online predictions, one row per line; empty when nothing was logged.
    A last line cut short by a crash is skipped."""
    path = day_path(home, day)
    rows = []
    if path.exists():
        for line in path.read_text("utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return pd.DataFrame(rows)
