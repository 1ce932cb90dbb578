"""The Dask cluster behind the heavy model steps (the optional `.[dask]` extra): where it is,
connecting to it, and the training snapshots its workers read slice by slice.

With a cluster configured (`UNIFIED_ASSETS_DASK_CLUSTER`: a scheduler address, or `local:N`
for N local worker processes), lib/models/dask_steps.py runs a model's search, its training
and its scoring there. Without a cluster nothing here runs.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import pandas as pd
import pyarrow.parquet as pq

from unified_assets.lib.core import files

log = logging.getLogger(__name__)

LOCAL = "local:"
THREADS_PER_WORKER = 2  # LightGBM's Dask guide asks for at least two threads a worker
CONNECT_TIMEOUT_S = 10.0
# A local cluster's workers share the host's cores with the driver and each other; OpenMP
# threads that spin while they wait then steal those cores (measured on 2 busy cores: 50
# rounds on 12k rows took 16 s with two spinning threads, 0.2 s with passive waiting).
WORKER_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


class ClusterUnreachable(RuntimeError):
    """The configured Dask scheduler does not answer."""


class DistributedTrainingFailed(RuntimeError):
    """A training or a trial on the cluster failed (a worker died, a task raised)."""


@dataclass(frozen=True)
class Target:
    """Where the heavy steps run: an existing scheduler, or a LocalCluster of N processes."""

    address: str | None = None
    local_workers: int = 0

    def describe(self) -> str:
        return self.address or f"a local cluster of {self.local_workers} worker processes"


def parse(setting: str) -> Target | None:
    """'' -> None (no cluster: today's single process); 'local:N' -> N local workers;
    'tcp://host:port' or 'host:port' -> that scheduler."""
    text = (setting or "").strip()
    if not text:
        return None
    if text.startswith(LOCAL):
        count = text[len(LOCAL):]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"dask cluster {text!r}: expected local:N with N >= 1 workers")
        return Target(local_workers=int(count))
    address = text if "://" in text else f"tcp://{text}"
    parts = urlsplit(address)
    if not parts.hostname or not parts.port:
        raise ValueError(f"dask cluster {text!r}: expected a scheduler address host:port, "
                         "tcp://host:port, or local:N")
    return Target(address=address)


def _probe(address: str, timeout_s: float) -> None:
    parts = urlsplit(address)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ClusterUnreachable(
            f"the Dask scheduler at {address} cannot be reached ({exc}); check "
            "UNIFIED_ASSETS_DASK_CLUSTER, or leave it empty to train in this process"
        ) from exc


@contextmanager
def connect(setting: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator:
    """A Dask client on the configured cluster; a `local:N` cluster is started here and
    stopped on exit. An address that does not answer fails at once, naming it."""
    from distributed import Client, LocalCluster

    target = parse(setting)
    if target is None:
        raise ValueError("no Dask cluster is configured")
    if target.address:
        _probe(target.address, min(timeout_s, 5.0))
        try:
            client = Client(target.address, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterUnreachable(f"the Dask scheduler at {target.address} did not "
                                     f"answer within {timeout_s:g} s: {exc}") from exc
        try:
            yield client
        finally:
            client.close()
        return
    with LocalCluster(n_workers=target.local_workers, threads_per_worker=THREADS_PER_WORKER,
                      processes=True, host="127.0.0.1", dashboard_address=None,
                      silence_logs=logging.ERROR, env=dict(WORKER_ENV)) as local, \
            Client(local, set_as_default=False) as client:
        yield client


def workers(client) -> list[str]:
    """The cluster's worker addresses, sorted; an error when there are none."""
    found = sorted(client.scheduler_info()["workers"])
    if not found:
        raise DistributedTrainingFailed(f"the Dask cluster at {client.scheduler.address} "
                                        "has no workers")
    return found


# -- snapshots read on workers -------------------------------------------------------------
def verify(path: str, sha256: str) -> None:
    """Refuse a dataset snapshot whose bytes no longer hash to its recorded sha256 (read in
    chunks: the driver never loads the frame to check it)."""
    files.check(path, sha256, files.sha256_file(path), "dataset")


def slices(path: str, parts: int) -> list[tuple[int, int, int]]:
    """The snapshot cut into about `parts` slices (row group, first row, end row) of similar
    size, none crossing a row group, so a worker reads at most one row group at a time."""
    meta = pq.ParquetFile(path).metadata
    total = meta.num_rows
    size = max(1, -(-total // max(1, parts)))
    out = []
    for group in range(meta.num_row_groups):
        rows = meta.row_group(group).num_rows
        for start in range(0, rows, size):
            out.append((group, start, min(rows, start + size)))
    return out


def read_slice(path: str, group: int, start: int, stop: int, step: int = 1) -> pd.DataFrame:
    """Rows [start, stop) of one row group (every `step`-th), as pandas."""
    table = pq.ParquetFile(path).read_row_group(group)
    return table.slice(start, stop - start).to_pandas().iloc[::step].reset_index(drop=True)


def read_sample(path: str, max_rows: int) -> pd.DataFrame:
    """The snapshot whole when it has at most `max_rows` rows, else every k-th row of it,
    read row group by row group."""
    meta = pq.ParquetFile(path).metadata
    step = max(1, -(-meta.num_rows // max_rows))
    if step == 1:
        return pd.read_parquet(path)
    frames = [read_slice(path, g, 0, meta.row_group(g).num_rows, step)
              for g in range(meta.num_row_groups)]
    return pd.concat(frames, ignore_index=True)


def read_share(path: str, share: int, shares: int) -> pd.DataFrame:
    """Every `shares`-th row of the snapshot from row `share` on, read row group by row group:
    a worker's part of the training set, spread over the whole period (contiguous blocks would
    give each worker other weeks, hence other histogram bins, and a model that depends on
    which worker LightGBM ranks first)."""
    file = pq.ParquetFile(path)
    frames, offset = [], 0
    for group in range(file.metadata.num_row_groups):
        rows = file.metadata.row_group(group).num_rows
        first = (share - offset) % shares
        table = file.read_row_group(group)
        frames.append(table.to_pandas().iloc[first::shares])
        del table
        offset += rows
    return pd.concat(frames, ignore_index=True)


