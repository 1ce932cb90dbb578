"""The online request log: every prediction the service makes, one JSON line each, in
append-only files under `$UNIFIED_ASSETS_HOME/online/requests/`, one file per scored day (the
flight's date, or the forecaster's feature day), so the daily monitoring reads a day's online
traffic as it reads a day's batch predictions.

A line: request id, received time (UTC), model, model version, the scored row's key, its
features, prediction, flags and the request's latency. Lines are written by one background
thread (requests never wait on the disk), flushed as they are written and fsync'ed within
`sync_every_s`; a crash loses at most that last fraction of a second.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
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

    def __init__(self, home: Path, sync_every_s: float = 0.2):
        self.home = Path(home)
        self.sync_every_s = sync_every_s
        self._queue: queue.Queue = queue.Queue()
        self._files: dict[date, object] = {}
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def write(self, records: list[tuple[date, dict]]) -> None:
        """Queue (scored day, record) pairs; returns at once."""
        self._queue.put(records)

    def close(self) -> None:
        """Write what is queued, sync and close the files."""
        self._queue.put(None)
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
            try:
                records = self._queue.get(timeout=self.sync_every_s)
            except queue.Empty:
                records = ()
            if records is None:
                break
            for day, record in records:
                self._file(day).write(json.dumps(record, default=str) + "\n")
            for handle in self._files.values():
                handle.flush()
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
