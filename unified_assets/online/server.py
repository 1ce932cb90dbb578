"""The serving process: what `unified-assets serve` runs once it has its settings.

It imports only what scoring needs: the service, NumPy, LightGBM without its optional pandas and
scikit-learn integrations, FastAPI and uvicorn; the settings were read by a forked child
(`online/commands.py`), so Dagster and pandas never load here.

With `--workers N` the process binds the socket, then forks N workers that accept on it, as
gunicorn does; each maps the same online store files, so the store's pages are shared through
the page cache. The parent replaces a worker that dies and stops them all on SIGTERM or SIGINT.
Metrics are then kept in files shared by the workers (prometheus_client's multiprocess mode),
so `/metrics` answers for the whole service whichever worker a scrape reaches.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile

# LightGBM imports pandas, scikit-learn, Dask and pyarrow whenever they are installed (about 130
# MB resident, a second of start); the service scores NumPy arrays and needs none of them.
# Python's documented None in sys.modules makes them unimportable in this process.
NOT_SERVED = ("pandas", "sklearn", "dask", "distributed", "pyarrow", "polars", "cffi",
              "datatable", "matplotlib", "graphviz", "duckdb", "dagster")
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when it is imported
log = logging.getLogger("unified_assets.online.server")


def keep_out_unserved() -> None:
    """Make the libraries the service does not use unimportable in this process."""
    for name in NOT_SERVED:
        sys.modules.setdefault(name, None)


def share_metrics(workers: int) -> str:
    """For several workers, a new folder for their metric files, named to prometheus_client
    (before it is first imported: it decides then); "" for one worker."""
    if workers <= 1:
        return ""
    folder = tempfile.mkdtemp(prefix="unified-assets-metrics-")
    os.environ[METRICS_DIR] = folder
    return folder


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _die_with_parent() -> None:
    """A worker stops when its parent dies, even by SIGKILL (Linux's PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's SIGTERM still stops them
        pass


def _run_worker(config, sock: socket.socket, worker: int | None) -> None:
    from unified_assets.online.app import run

    run(dataclasses.replace(config, worker=worker), sock)


def _supervise(config, sock: socket.socket, workers: int) -> int:
    """Fork the workers, replace any that dies, stop them all on SIGTERM or SIGINT."""
    from prometheus_client import multiprocess

    children: dict[int, int] = {}  # pid -> worker number
    stopping = False

    def start(number: int) -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _die_with_parent()
            try:
                _run_worker(config, sock, number)
            finally:
                os._exit(0)
        children[pid] = number

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for number in range(workers):
        start(number)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        number = children.pop(pid, None)
        if number is None:
            continue
        multiprocess.mark_process_dead(pid)
        if not stopping:
            log.error("worker %s (pid %s) ended (status %s); starting another", number, pid,
                      status)
            start(number)
    return 0


def serve(config, host: str, port: int, workers: int = 1) -> int:
    """Serve until interrupted: in this process, or in `workers` forked workers (their metrics
    in `config.metrics_dir`, from `share_metrics`, removed when they end). The caller has kept
    the unserved libraries out and imported the app first (`online/commands.py`), so the
    workers share the imported modules' pages."""
    try:
        sock = _bind(host, port)
    except OSError as exc:
        print(f"serve: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 2
    if workers <= 1:
        _run_worker(config, sock, None)
        return 0
    try:
        return _supervise(config, sock, workers)
    finally:
        shutil.rmtree(config.metrics_dir, ignore_errors=True)
