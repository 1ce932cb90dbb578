"""`serve --workers 2` end to end: two forked workers accept on one port over one memory-mapped
online store, /metrics counts for the whole service whichever worker answers, a worker that dies
is replaced, and SIGTERM stops them all. The serving processes load neither pandas nor Dagster."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from unified_assets_tests.support.reads import query
from unified_assets_tests.support.serving import MODEL, serve

DAY = "2013-01-14"
NOT_LOADED = ("pandas/_libs", "sklearn", "pyarrow", "duckdb", "scipy/stats")


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return sorted(int(p) for p in text.split())


def _mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def _scored(client: httpx.Client) -> float:
    line = f'unified_assets_online_requests_total{{model="{MODEL}",status="200"}} '
    found = [row for row in client.get("/metrics").text.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


def _wait(condition, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_two_workers_share_the_port_count_as_one_and_outlive_a_worker(served_home):
    home = served_home["home"]
    (c, f, o, d, s, t), = query(home, "SELECT carrier, flight, origin, dest, sched_dep_ts, "
                                "tailnum FROM warehouse.fct_flights WHERE flight_date = ? "
                                "ORDER BY ALL LIMIT 1", [DAY])
    flight = {"carrier": c, "flight": f, "origin": o, "dest": d, "sched_dep": s.isoformat(),
              "tailnum": t}
    process, url = serve(home, "--workers", "2")
    port = int(url.rsplit(":", 1)[1])
    try:
        workers = _children(process.pid)
        assert len(workers) == 2
        for pid in [process.pid, *workers]:  # scoring needs NumPy and LightGBM, not pandas
            maps = _mapped(pid)
            assert [lib for lib in NOT_LOADED if lib in maps] == []
            assert "online/store-" in maps or pid == process.pid  # the store, memory-mapped
        answers = []
        for i in range(40):  # a new connection each: the kernel hands them to either worker
            with httpx.Client(base_url=url, timeout=10) as client:
                answers.append(client.post(f"/v1/models/{MODEL}/predict",
                                           json={"flights": [flight]},
                                           headers={"X-Request-ID": f"w-{i}"}))
        assert {a.status_code for a in answers} == {200}
        assert len({a.json()["predictions"][0]["prediction"] for a in answers}) == 1
        with httpx.Client(base_url=url, timeout=10) as client:
            # every scrape, whichever worker answers it, counts all 40
            assert [_scored(client) for _ in range(4)] == [40.0] * 4
            # each worker writes its own request log file; together they hold every request
            logs = home / "online" / "requests"
            today = datetime.now(UTC).date().isoformat()
            assert _wait(lambda: sum(p.read_text().count('"request_id"') for p in
                                     logs.glob(f"{today}.w*.jsonl")) == 40)

            os.kill(workers[0], signal.SIGKILL)  # a worker dies: another takes its place
            assert _wait(lambda: len(_children(process.pid)) == 2
                         and workers[0] not in _children(process.pid))
            assert client.get("/ready").status_code == 200
            assert client.post(f"/v1/models/{MODEL}/predict",
                               json={"flights": [flight]}).status_code == 200
            assert _scored(client) >= 41  # the dead worker's counts are kept
    finally:
        survivors = _children(process.pid)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        process.stdout.close()
    assert process.returncode == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in survivors)
    # the workers' metric files went with them
    assert [f for pid in survivors + workers for f in Path(tempfile.gettempdir()).glob(
        f"unified-assets-metrics-*/*_{pid}.db")] == []
    with socket.socket() as s:  # nothing listens on the port any more
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
