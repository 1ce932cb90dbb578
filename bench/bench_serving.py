"""The prediction service under a bounded load on loopback, beside the in-process floor.

    .venv/bin/python bench/bench_serving.py [--source data] [--day 2013-06-14] [--seconds 10]

Reads the warehouse of `--source` (a built home, read-only) once to export the online store
into a temporary home that links the source's deployments and artifacts; starts
`unified-assets serve` there on a free port; checks one answer of each size whole (httpx);
then, with real HTTP over keep-alive loopback connections (one per worker thread, requests
encoded before the clock starts, latency from the first byte sent to the last byte of the
response, so the client's own Python is not in the figure):
- `GET /health` at 200/s: what loopback HTTP and the two processes' wake-ups cost alone;
- single-flight requests at a fixed rate (200/s) for a fixed time: latency p50/p99;
- 100-flight requests at 10/s: latency p50/p99;
- single-flight requests back to back over one connection (the HTTP twin of the floor);
- the highest sustained rate: single-flight requests, 4 workers back to back;
and in this process the floor: the same Service.predict (feature lookup, predict, log) with
no HTTP, back to back (the goal's floor) and paced at 200/s like the HTTP load (a process
that sleeps between calls finds its caches cold on a shared machine). Then the same server with
`--workers 2`: single-flight and 100-flight requests at the highest rate, to compare with one
worker. Reports throughput, p50, p99, the time from start to /ready, and each serving process's
resident memory (RSS, its peak, and PSS, which counts pages the workers share once).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import duckdb
import httpx
import numpy as np

from unified_assets.lib.core import config
from unified_assets.lib.serving import online_export, online_store
from unified_assets.online.service import Service, ServiceConfig

MODEL = "delay_classifier"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flights_of(source: Path, day: str) -> list[dict]:
    conn = duckdb.connect(str(config.warehouse_path(source)), read_only=True)
    try:
        rows = conn.execute("SELECT carrier, flight, origin, dest, sched_dep_ts, tailnum FROM "
                            "warehouse.fct_flights WHERE flight_date = ? ORDER BY sched_dep_ts",
                            [day]).fetchall()
    finally:
        conn.close()
    return [{"carrier": c, "flight": f, "origin": o, "dest": d, "sched_dep": s.isoformat(),
             "tailnum": t} for c, f, o, d, s, t in rows]


def prepare(source: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    for name in ("deployments", "artifacts"):
        (home / name).symlink_to((source / name).resolve())
    conn = duckdb.connect(str(config.warehouse_path(source)), read_only=True)
    try:
        started = time.perf_counter()
        online_export.export(conn, home)
        print(f"online store exported in {time.perf_counter() - started:.1f} s")
    finally:
        conn.close()
    return home


class Connection:
    """One keep-alive HTTP/1.1 connection that sends pre-built requests and reads whole
    responses: the client adds a send and a few reads to the latency, not an HTTP library."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request; the status and body of its response."""
        self.sock.sendall(raw)
        data = self.buffer
        while (end := data.find(b"\r\n\r\n")) < 0:
            data += self._recv()
        head = data[:end].decode("latin-1").lower()
        length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
        while len(data) < end + 4 + length:
            data += self._recv()
        self.buffer = data[end + 4 + length :]
        return int(head[9:12]), data[end + 4 : end + 4 + length]

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


def encode(port: int, bodies: list[dict]) -> list[bytes]:
    """Each body as a whole POST to the predict route, built before the clock starts."""
    out = []
    for body in bodies:
        payload = json.dumps(body).encode()
        out.append(f"POST /v1/models/{MODEL}/predict HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
                   f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n"
                   .encode() + payload)
    return out


def load(port: int, requests: list[bytes], rate: float | None, seconds: float, count: int,
         workers: int, expect: bytes = b'{"model"') -> dict:
    """Send up to `count` requests for at most `seconds`, at `rate` per second (the i-th is due
    at i / rate; a late one goes at once) or back to back (rate None), over `workers`
    keep-alive connections; latency from the first byte sent to the last byte received."""
    latencies, failures = [], []
    lock, counter = threading.Lock(), [0]
    start = time.perf_counter() + 0.2

    def worker() -> None:
        conn = Connection(port)
        mine, bad = [], []
        try:
            while True:
                with lock:
                    i = counter[0]
                    counter[0] += 1
                if i >= count:
                    return
                due = start + (i / rate if rate else 0)
                if due - start > seconds or time.perf_counter() - start > seconds:
                    return
                if (wait := due - time.perf_counter()) > 0:
                    time.sleep(wait)
                sent = time.perf_counter()
                status, body = conn.request(requests[i % len(requests)])
                took = time.perf_counter() - sent
                (mine if status == 200 and body.startswith(expect) else bad).append(took)
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)
                failures.extend(bad)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {"requests": len(lat), "failed": len(failures), "throughput": len(lat) / elapsed,
            "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))}


def floor(home: Path, bodies: list[dict], n: int, rate: float | None = None) -> dict:
    """The same Service.predict in this process, no HTTP: back to back, or paced at `rate`
    per second as the HTTP load is (the i-th call due at i / rate)."""
    from unified_assets.online.app import _local  # the app's own conversion of a request

    service = Service(ServiceConfig(home))
    service.refresh()
    requests = [[online_store.FlightRequest(f["carrier"], f["flight"], f["origin"], f["dest"],
                 _local(datetime.fromisoformat(f["sched_dep"])), f["tailnum"])
                 for f in b["flights"]] for b in bodies]
    lat = []
    started = time.perf_counter()
    for i in range(n):
        if rate and (wait := started + i / rate - time.perf_counter()) > 0:
            time.sleep(wait)
        t = time.perf_counter()
        service.predict(MODEL, flights=requests[i % len(requests)])
        lat.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    service.stop()
    lat = np.array(lat) * 1000
    return {"requests": n, "failed": 0, "throughput": n / elapsed,
            "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))}


def memory(pid: int) -> dict:
    """A serving process's resident memory now and at its peak, and its proportional share
    (PSS: pages shared with other workers, such as the mapped store, counted once in all), MiB."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    pss = next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
    return {"rss": int(status["VmRSS"].split()[0]) / 1024,
            "hwm": int(status["VmHWM"].split()[0]) / 1024, "pss": pss / 1024}


def start(home: Path, workers: int) -> tuple[subprocess.Popen, int, float]:
    """`unified-assets serve --workers N` on a free port; the seconds from start to /ready."""
    port = free_port()
    env = dict(os.environ, UNIFIED_ASSETS_HOME=str(home))
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "unified_assets.cli", "serve", "--port",
                               str(port), "--workers", str(workers)], env=env,
                              stdout=subprocess.DEVNULL)
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert server.poll() is None, "the server ended"
        time.sleep(0.02)
    return server, port, time.perf_counter() - started


def serving(home: Path, workers: int, singles: list, hundreds: list, s: float) -> dict:
    """One server's figures: time to ready, memory after the loads, and the loads."""
    server, port, ready = start(home, workers)
    try:
        url = f"http://127.0.0.1:{port}"
        for body in (singles[0], hundreds[0]):  # the answers are whole, checked once
            answer = httpx.post(f"{url}/v1/models/{MODEL}/predict", json=body).json()
            assert len(answer["predictions"]) == len(body["flights"]), answer
        single_requests, hundred_requests = encode(port, singles), encode(port, hundreds)
        load(port, single_requests, None, 2, 300, 2)  # warm up
        health = [f"GET /health HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n".encode()]
        rows = {}
        if workers == 1:
            rows |= {
                "GET /health @ 200/s (HTTP, no scoring)": load(
                    port, health, 200, s, int(200 * s), 8, expect=b'{"status"'),
                "1 flight @ 200/s (HTTP)": load(port, single_requests, 200, s, int(200 * s), 8),
                "1 flight back to back, 1 connection (HTTP)": load(
                    port, single_requests, None, s, 3_000, 1),
                "100 flights @ 10/s (HTTP)": load(port, hundred_requests, 10, s, int(10 * s), 4),
            }
        rows[f"1 flight, max rate, 4 connections, {workers} worker(s) (HTTP)"] = load(
            port, single_requests, None, s, 100_000, 4)
        rows[f"100 flights, max rate, 4 connections, {workers} worker(s) (HTTP)"] = load(
            port, hundred_requests, None, s, 100_000, 4)
        dropped = sum(float(line.split()[-1]) for line in httpx.get(f"{url}/metrics").text
                      .splitlines() if line.startswith(
                          'unified_assets_online_request_log_problems_total{kind="dropped_rows"}'))
        pids = [server.pid]
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
        pids += [int(p) for p in children.read_text().split()]
        mem = {pid: memory(pid) for pid in pids}
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"ready": ready, "rows": rows, "memory": mem, "workers": workers, "dropped": dropped}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=config.default_home())
    parser.add_argument("--day", default="2013-06-14")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    home = prepare(args.source)
    flights = flights_of(args.source, args.day)
    singles = [{"flights": [f]} for f in flights]
    hundreds = [{"flights": flights[i : i + 100]} for i in range(0, len(flights) - 100, 100)]
    s = args.seconds
    one = serving(home, 1, singles, hundreds, s)
    two = serving(home, 2, singles, hundreds, s)
    rows = one["rows"] | two["rows"]
    rows["1 flight (in-process floor)"] = floor(home, singles, 3_000)
    rows["1 flight @ 200/s (in-process, paced)"] = floor(home, singles, int(200 * s), 200)
    rows["100 flights (in-process floor)"] = floor(home, hundreds, 200)
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; day {args.day} ({len(flights)} flights)")
    print("| load | requests | failed | throughput (req/s) | p50 (ms) | p99 (ms) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['requests']} | {r['failed']} | {r['throughput']:.0f} | "
            f"{r['p50']:.2f} | {r['p99']:.2f} |"
        )
    print("\n| server | ready after start (s) | rows the log dropped | process | RSS (MiB) | "
          "peak RSS (MiB) | PSS (MiB) |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for run in (one, two):
        for i, m in enumerate(run["memory"].values()):
            role = ("the one worker" if run["workers"] == 1 else
                    "supervisor" if i == 0 else f"worker {i}")
            print(f"| --workers {run['workers']} | {run['ready']:.2f} | {run['dropped']:.0f} | "
                  f"{role} | {m['rss']:.0f} | {m['hwm']:.0f} | {m['pss']:.0f} |")
    http, fl = rows["1 flight @ 200/s (HTTP)"], rows["1 flight (in-process floor)"]
    paced = rows["1 flight @ 200/s (in-process, paced)"]
    b2b = rows["1 flight back to back, 1 connection (HTTP)"]
    gain = {size: two["rows"][f"{size}, max rate, 4 connections, 2 worker(s) (HTTP)"]["throughput"]
            / one["rows"][f"{size}, max rate, 4 connections, 1 worker(s) (HTTP)"]["throughput"]
            for size in ("1 flight", "100 flights")}
    print(
        f"\nsingle flight at 200/s: p50 {http['p50']:.2f} ms (goal <= 5), p99 {http['p99']:.2f}"
        f" ms (goal <= 20). HTTP p99 / in-process p99, like for like: at 200/s"
        f" {http['p99'] / paced['p99']:.1f}, back to back {b2b['p99'] / fl['p99']:.1f}."
        f" Throughput at 2 workers against 1: single flights {gain['1 flight']:.2f}x,"
        f" 100-flight requests {gain['100 flights']:.2f}x."
        f" GET /health alone p99 {rows['GET /health @ 200/s (HTTP, no scoring)']['p99']:.2f} ms"
    )
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
