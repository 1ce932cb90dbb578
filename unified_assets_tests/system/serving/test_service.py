"""The online prediction service end to end: a real `unified-assets serve` process on a free
port, real HTTP (httpx), over a home built for two real weeks of January 2013 with two promoted
versions of the delay classifier (a champion, then a challenger)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import pandas as pd
import pytest

from unified_assets.lib.core import artifacts
from unified_assets.lib.deployment import manifests
from unified_assets.lib.serving import request_log
from unified_assets_tests.support.reads import query, scalar
from unified_assets_tests.support.receivers import free_port
from unified_assets_tests.support.runs import all_assets, run_assets
from unified_assets_tests.support.serving import serve, stop

MODEL = "delay_classifier"
MAX_BODY = 4 * 1024 * 1024  # the served limit here: 10,000 flights fit, 4 MiB of junk does not
DAY = "2013-01-14"
PREDICTIONS = dg.AssetKey(["serving", f"{MODEL}_predictions"])
ONLINE_STORE = dg.AssetKey(["serving", "online_store"])
ONLINE_PREDICTIONS = dg.AssetKey(["monitoring", "online_predictions"])


@pytest.fixture(scope="module")
def server(served_home):
    """The service on a free loopback port, ready: 2 s body and header timeouts, a 4 MiB body
    limit."""
    home = served_home["home"]
    process, url = serve(home, "--body-timeout-s", "2", "--header-timeout-s", "2",
                          "--max-body-bytes", str(MAX_BODY))
    with httpx.Client(base_url=url, timeout=5) as client:
        yield {"url": url, "client": client, "home": home, "pid": process.pid, **served_home}
    stop(process)


def _flights(home: Path, day: str, limit: int | None = None) -> list[dict]:
    """The day's flights as the published schedule knows them, in key order."""
    rows = query(home, "SELECT carrier, flight, origin, dest, sched_dep_ts, tailnum FROM "
                 "warehouse.fct_flights WHERE flight_date = ? ORDER BY carrier, flight, origin, "
                 f"sched_dep_ts {f'LIMIT {limit}' if limit else ''}", [day])
    return [{"carrier": c, "flight": f, "origin": o, "dest": d, "sched_dep": s.isoformat(),
             "tailnum": t} for c, f, o, d, s, t in rows]


def _predict(client: httpx.Client, body: dict, model: str = MODEL) -> httpx.Response:
    return client.post(f"/v1/models/{model}/predict", json=body)


def test_a_prediction_field_by_field(server):
    home = server["home"]
    flight = _flights(home, DAY, limit=1)[0]
    response = _predict(server["client"], {"flights": [flight], "request_id": "r-1",
                                           "return_features": True})
    assert response.status_code == 200
    body = response.json()
    current = server["challenger"]
    assert body["model"] == MODEL and body["request_id"] == "r-1"
    assert body["version"] == current["version"] == body["sha256"]
    (item,) = body["predictions"]
    assert item["key"]["carrier"] == flight["carrier"] and item["key"]["flight_date"] == DAY
    assert 0.0 < item["prediction"] < 1.0
    assert item["predicted_positive"] == (item["prediction"] >= current["threshold"])
    assert item["unseen"] == [] and item["flags"] == []
    # the features are the batch table's row for that flight, field by field
    columns = list(item["features"])
    (row,) = query(home, f"SELECT {', '.join(columns)}, cutoff_utc, weather_as_of, rates_as_of "
                   "FROM features.flight_features WHERE flight_date = ? AND carrier = ? AND "
                   "flight = ? AND origin = ? AND sched_dep_ts = ?",
                   [DAY, flight["carrier"], flight["flight"], flight["origin"],
                    flight["sched_dep"]])
    for name, expected in zip(columns, row, strict=False):
        got = item["features"][name]
        if expected is None or isinstance(expected, str):
            assert got == expected, name
        else:
            assert got == pytest.approx(float(expected), abs=1e-12), name
    cutoff, weather_as_of, rates_as_of = row[len(columns) :]
    assert item["cutoff_utc"] == cutoff.isoformat()
    assert item["features_as_of"]["weather"] == weather_as_of.isoformat()
    assert item["features_as_of"]["rates"] == rates_as_of.isoformat()
    assert all(v is None or v <= item["cutoff_utc"] for v in item["features_as_of"].values())


def test_every_flight_of_a_day_equals_the_batch_prediction(server):
    """No training-serving skew: the day's batch predictions, then the same flights online."""
    home = server["home"]
    assert run_assets(home, all_assets(), [PREDICTIONS], DAY, DAY).success
    # the store's check re-scored a sample of the batch day through the service code path
    result = run_assets(home, all_assets(), [ONLINE_STORE])
    assert result.success
    (check,) = [e for e in result.get_asset_check_evaluations()
                if e.check_name == "online_parity"]
    assert check.passed and check.metadata["max_abs_gap"].value <= 1e-9
    assert check.metadata["models"].value[MODEL]["rows"] > 0
    batch = query(home, f"SELECT carrier, flight, origin, sched_dep_ts, prediction, model_version "
                  f"FROM serving.{MODEL}_predictions WHERE flight_date = ? "
                  "ORDER BY carrier, flight, origin, sched_dep_ts", [DAY])
    flights = _flights(home, DAY)
    assert len(batch) == len(flights) > 800
    response = _predict(server["client"], {"flights": flights})
    assert response.status_code == 200
    body = response.json()
    assert {b[5] for b in batch} == {body["version"]}
    gaps = [abs(p["prediction"] - b[4]) for p, b in zip(body["predictions"], batch, strict=True)]
    assert max(gaps) <= 1e-9


def test_bad_input_gets_a_clear_answer(server):
    client = server["client"]
    flight = _flights(server["home"], DAY, limit=1)[0]
    wrong = _predict(client, {"flights": [flight | {"origin": "jfk1"}]})
    assert wrong.status_code == 422 and wrong.json()["field"] == "flights.0.origin"
    late = _predict(client, {"flights": [flight | {"sched_dep": "tomorrow"}]})
    assert late.status_code == 422 and late.json()["field"] == "flights.0.sched_dep"
    neither = _predict(client, {"forecasts": [{"origin": "JFK", "target_date": DAY}]})
    assert neither.status_code == 422 and neither.json()["field"] == "flights"
    missing = _predict(client, {"features": [{"sched_hour": 5}]})
    assert missing.status_code == 422 and missing.json()["field"].startswith("features.0.")
    too_many = _predict(client, {"flights": [flight] * 10_001})
    assert too_many.status_code == 413
    assert _predict(client, {"flights": [flight]}, model="no_such_model").status_code == 404
    unpromoted = _predict(client, {"flights": [flight]}, model="arrival_delay_regressor")
    assert unpromoted.status_code == 503 and "no promoted model" in unpromoted.json()["detail"]
    # an unseen carrier and destination are still scored, and named
    odd = _predict(client, {"flights": [flight | {"carrier": "ZZ", "dest": "XYZ"}]})
    assert odd.status_code == 200
    (item,) = odd.json()["predictions"]
    assert sorted(item["unseen"]) == ["carrier", "dest"] and 0 < item["prediction"] < 1
    metrics = client.get("/metrics").text
    assert (
        'unified_assets_online_errors_total{model="delay_classifier",status="422"} 4.0' in metrics
    )
    assert 'unified_assets_online_errors_total{model="unknown",status="404"} 1.0' in metrics


def test_a_large_request_does_not_hold_up_small_ones(server):
    """A 10,000-flight request scores in a worker thread: single flights sent while it runs
    are scored during its scoring, as the request log's times show (on the event loop none
    could be: the loop would be busy with the big one)."""
    home, url = server["home"], server["url"]
    flight, day = _flights(home, DAY, limit=1)[0], _flights(home, DAY)
    flights = (day * (10_000 // len(day) + 1))[:10_000]
    with httpx.Client(base_url=url, timeout=60) as alone:
        started = time.perf_counter()
        assert _predict(alone, {"flights": flights, "request_id": "warm-up"}).status_code == 200
        big_alone = time.perf_counter() - started

    def send_big() -> None:
        with httpx.Client(base_url=url, timeout=60) as own:
            body = {"flights": flights, "request_id": "big-one"}
            assert _predict(own, body).status_code == 200

    sender = threading.Thread(target=send_big)
    sender.start()
    time.sleep(big_alone / 4)  # the big body is in and being scored
    with httpx.Client(base_url=url, timeout=60) as small:
        i = 0
        while sender.is_alive():
            body = {"flights": [flight], "request_id": f"beside-big-{i}"}
            assert _predict(small, body).status_code == 200
            i += 1
    sender.join()
    deadline = time.monotonic() + 10  # the log thread writes every 0.05 s
    while True:
        log = request_log.read_day(home, date.fromisoformat(DAY))
        if (log["request_id"] == "big-one").sum() == 10_000 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    big = log[log["request_id"] == "big-one"].iloc[0]
    scored_until = pd.Timestamp(big["received_at"])  # when the big one's scoring ended
    scored_from = scored_until - pd.Timedelta(milliseconds=big["latency_ms"])
    singles = pd.to_datetime(log.loc[log["request_id"].str.startswith("beside-big-"),
                                     "received_at"])
    during = singles[(singles > scored_from) & (singles < scored_until)]
    assert len(during) >= 3, (len(singles), big["latency_ms"], big_alone)


def test_models_health_ready_docs(server):
    client = server["client"]
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["ready"] and ready["serving"] == {MODEL: server["challenger"]["version"]}
    models = {m["model"]: m for m in client.get("/v1/models").json()["models"]}
    assert models[MODEL]["version"] == server["challenger"]["version"]
    assert models[MODEL]["test_metrics"]["auc"] == server["challenger"]["metrics"]["test"]["auc"]
    assert models["departures_forecaster"]["version"] is None
    assert client.get("/docs").status_code == 200
    assert "/v1/models/{model}/predict" in client.get("/openapi.json").json()["paths"]


def test_rollback_and_promotion_under_load(server):
    """A bounded load; a rollback, then the challenger promoted again: no request fails, each
    names its version, each switch is seen within a few seconds."""
    home, client = server["home"], server["client"]
    champion, challenger = server["champion"]["version"], server["challenger"]["version"]
    flights = _flights(home, DAY, limit=50)
    seen: list[tuple[float, int, str | None]] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=server["url"], timeout=10) as own:
            i = 0
            while not stop.is_set() and i < 2_000:
                r = _predict(own, {"flights": [flights[(worker + i) % len(flights)]]})
                seen.append((time.monotonic(), r.status_code, r.json().get("version")))
                i += 1

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(load, w) for w in range(4)]
        time.sleep(1.0)
        rolled_at = time.monotonic()
        manifests.rollback(home, MODEL, reason="test: rollback under load")
        assert _wait_for(client, champion, 5), "rollback not seen within 5 s"
        promoted_at = time.monotonic()
        manifests.record(home, MODEL, manifests.current(home, MODEL) | {
            k: v for k, v in server["challenger"].items() if not k.startswith("_")})
        assert _wait_for(client, challenger, 5), "promotion not seen within 5 s"
        time.sleep(0.5)
        stop.set()
        for f in futures:
            f.result()
    assert len(seen) > 50 and {s for _, s, _ in seen} == {200}
    assert {v for _, _, v in seen} == {champion, challenger}
    first_champion = min(t for t, _, v in seen if v == champion and t > rolled_at)
    assert first_champion - rolled_at < 5
    assert max(t for t, _, v in seen if v == challenger) > promoted_at
    metrics = client.get("/metrics").text
    assert f'unified_assets_online_model_version{{model="{MODEL}",version="{challenger}"}} 1.0' \
        in metrics
    assert 'unified_assets_online_reloads_total{model="delay_classifier"} 3.0' in metrics


def _wait_for(client: httpx.Client, version: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client.get("/ready").json()["serving"].get(MODEL) == version:
            return True
        time.sleep(0.05)
    return False


def test_tampered_artifact_is_refused_and_the_old_model_keeps_serving(server):
    home, client = server["home"], server["client"]
    challenger = server["challenger"]["version"]
    champion_sha = server["champion"]["artifact"]["sha256"]
    path = artifacts.model_path(home, champion_sha)
    original = path.read_bytes()
    path.write_bytes(original.replace(b"tree", b"TREE", 1))
    try:
        manifests.rollback(home, MODEL, reason="test: roll back onto a tampered artifact")
        deadline = time.monotonic() + 5
        while "refused_reloads_total{model=\"delay_classifier\"} 1.0" not in (
                metrics := client.get("/metrics").text):
            assert time.monotonic() < deadline, "the tampered artifact was not refused in 5 s"
            time.sleep(0.05)
        flight = _flights(home, DAY, limit=1)[0]
        response = _predict(client, {"flights": [flight]})
        assert response.status_code == 200 and response.json()["version"] == challenger
        models = {m["model"]: m for m in client.get("/v1/models").json()["models"]}
        assert "integrity check" in models[MODEL]["refused"]
        assert (models[MODEL]["promoted_version"], models[MODEL]["version"]) == (
            server["champion"]["version"], challenger)
        assert "unified_assets_online_refused_reloads_total" in metrics
        # not ready: the promoted version is not the one serving, and it says which and why
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "refused" in ready.json()["waiting_for"][MODEL]
        assert str(home) not in ready.text + client.get("/v1/models").text
    finally:
        path.write_bytes(original)
    # the repaired file is tried again (with backoff) and picked up, no restart
    assert _wait_for(client, server["champion"]["version"], 10), "the repair was not picked up"
    assert client.get("/ready").status_code == 200


def test_online_log_read_back_by_the_monitoring_asset(server):
    home, client = server["home"], server["client"]
    flights = _flights(home, "2013-01-13", limit=20)
    response = _predict(client, {"flights": flights, "request_id": "monitored"})
    assert response.status_code == 200
    # logged in the file of the day it arrived (the server's UTC day), each line with its day
    log = home / "online" / "requests" / f"{datetime.now(UTC).date()}.jsonl"
    deadline = time.monotonic() + 5
    while not log.exists() or "monitored" not in log.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)  # the writer's sync interval
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    lines = [line for line in lines if line["day"] == "2013-01-13"]
    mine = [line for line in lines if line["request_id"] == "monitored"]
    assert len(mine) == 20 and {m["model_version"] for m in mine} == {response.json()["version"]}
    assert set(mine[0]) >= {"request_id", "model_version", "features", "prediction", "latency_ms"}
    result = run_assets(home, all_assets(), [ONLINE_PREDICTIONS], "2013-01-13", "2013-01-13")
    assert result.success
    assert scalar(home, "SELECT count(*) FROM monitoring.online_predictions WHERE request_id = "
                  "'monitored'") == 20
    (row,) = query(
        home,
        "SELECT rows, labelled_rows, realized, metric FROM "
        "monitoring.online_daily WHERE day = '2013-01-13' AND model = ?",
        [MODEL],
    )
    assert row[0] == len(lines) and row[1] > 0 and row[3] == "auc" and 0 <= row[2] <= 1
    # drift of the online rows against the serving version's training reference: one day of
    # traffic is a partial window, judged on its predictions' PSI only
    (drifted,) = query(
        home,
        "SELECT drift_rows, drift_rule, prediction_psi, is_drift FROM monitoring.online_daily "
        "WHERE day = '2013-01-13' AND model = ?",
        [MODEL],
    )
    assert drifted[0] == len(lines) and drifted[1] in ("partial", "fixed")
    assert drifted[2] is not None and drifted[2] >= 0 and drifted[3] in (True, False)


def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _counted(client: httpx.Client, route: str, status: int) -> float:
    """The service's count of responses of a route and status, from /metrics."""
    line = f'unified_assets_online_http_responses_total{{route="{route}",status="{status}"}} '
    found = [row for row in client.get("/metrics").text.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


PREDICT = "/v1/models/{model}/predict"


def test_requests_over_many_dates_open_one_log_file(server):
    """Two requests of flights on thousands of distinct dates (the outage of one file per
    scored date): the log keeps one file open, the service stays healthy."""
    client, pid = server["client"], server["pid"]
    flight = _flights(server["home"], DAY, limit=1)[0]
    before = _open_files(pid)
    for start in (date(2014, 1, 1), date(2041, 6, 1)):
        flights = [flight | {"sched_dep": f"{start + timedelta(days=i)}T08:30:00"}
                   for i in range(3_000)]
        response = _predict(client, {"flights": flights})
        assert response.status_code == 200
    time.sleep(0.5)  # the log thread's turn
    assert _open_files(pid) <= before + 1
    files = list((server["home"] / "online" / "requests").glob("*.jsonl"))
    assert len(files) <= 2  # today's (and yesterday's, across midnight UTC)
    assert client.get("/health").status_code == 200
    assert _predict(client, {"flights": [flight]}).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"flights": [{"sched_dep": "0001-01-01T00:30:00"}]}, "flights.0.sched_dep"),
    ({"flights": [{"sched_dep": "9999-12-31T23:00:00"}]}, "flights.0.sched_dep"),
    ({"flights": [{"as_of": "0001-01-01T00:00:00"}]}, "flights.0.as_of"),
    ({"flights": [{"sched_dep": "2013-01-14T25:00:00"}]}, "flights.0.sched_dep"),
    ({"forecasts": [{"origin": "JFK", "target_date": "0001-01-01"}]},
     "forecasts.0.target_date"),
])
def test_values_outside_what_can_be_scored_are_422(server, body, field):
    client = server["client"]
    flight = _flights(server["home"], DAY, limit=1)[0]
    if "flights" in body:
        body = {"flights": [flight | body["flights"][0]]}
    before = _counted(client, PREDICT, 422)
    model = "departures_forecaster" if "forecasts" in body else MODEL
    response = _predict(client, body, model=model)
    assert response.status_code == 422 and response.json()["field"] == field
    assert _counted(client, PREDICT, 422) == before + 1
    assert _counted(client, PREDICT, 500) == 0


@pytest.mark.parametrize("raw", [
    b'{"features": [{"seats": 1e400}]}',
    b'{"features": [{"seats": ' + b"9" * 400 + b"}]}",
    b'{"features": [{"seats": NaN}]}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"flights": [' + b'{"carrier": "UA"},' * 3 + b"]}",
    b"\xff\xfe not json",
])
def test_malformed_and_extreme_bodies_are_422_never_500(server, raw):
    client = server["client"]
    response = client.post(f"/v1/models/{MODEL}/predict", content=raw,
                           headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert _counted(client, PREDICT, 500) == 0
    assert _predict(client, {"flights": _flights(server["home"], DAY, limit=1)}).status_code == 200


def test_a_body_over_the_limit_is_refused_before_it_is_read(server):
    client = server["client"]
    before = _counted(client, PREDICT, 413)
    port = int(server["url"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as declared:  # says more than allowed
        declared.sendall((f"POST /v1/models/{MODEL}/predict HTTP/1.1\r\nhost: x\r\n"
                          "content-type: application/json\r\ncontent-length: "
                          f"{MAX_BODY + 1}\r\n\r\n{{}}").encode())
        declared.settimeout(10)
        assert declared.recv(4096).startswith(b"HTTP/1.1 413")

    def chunks():  # no Content-Length: counted as it streams in
        for _ in range(MAX_BODY // 65_536 + 2):
            yield b" " * 65_536

    streamed = client.post(f"/v1/models/{MODEL}/predict", content=chunks(),
                           headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert _counted(client, PREDICT, 413) == before + 2
    assert client.get("/health").status_code == 200


def test_slow_and_vanishing_clients_are_cut_off(server):
    client, port = server["client"], int(server["url"].rsplit(":", 1)[1])
    head = (f"POST /v1/models/{MODEL}/predict HTTP/1.1\r\nhost: x\r\ncontent-type: "
            "application/json\r\ncontent-length: 1000\r\n\r\n{").encode()
    before = _counted(client, PREDICT, 408)
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.sendall(head)  # and then nothing: the body never comes
        slow.settimeout(10)
        answer = slow.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408")
    assert _counted(client, PREDICT, 408) == before + 1
    with socket.create_connection(("127.0.0.1", port)) as gone:
        gone.sendall(head)  # hangs up mid-body
    deadline = time.monotonic() + 5
    while _counted(client, PREDICT, 499) < 1:
        assert time.monotonic() < deadline, "the hang-up was not counted"
        time.sleep(0.05)
    assert client.get("/health").status_code == 200


def test_clients_that_never_finish_their_headers_are_closed(server):
    """Slowloris: connections that say nothing, or dribble headers, get a 408 and are closed
    after the header timeout (2 s here); a slow client within it is served; none leaks."""
    client, pid, port = server["client"], server["pid"], int(server["url"].rsplit(":", 1)[1])
    before, counted = _open_files(pid), _counted(client, "(headers)", 408)
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    dribbling = socket.create_connection(("127.0.0.1", port))
    dribbling.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n")
    started = time.monotonic()
    for _ in range(3):  # a header line now and then: not enough to be served
        time.sleep(0.5)
        dribbling.sendall(b"x-slow: 1\r\n")
    # meanwhile everyone else is served as usual
    assert client.get("/health").status_code == 200
    polite = socket.create_connection(("127.0.0.1", port))
    polite.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n")
    time.sleep(0.5)
    polite.sendall(b"connection: close\r\n\r\n")  # within the deadline: answered
    polite.settimeout(5)
    assert polite.recv(4096).startswith(b"HTTP/1.1 200")
    for sock in [*silent, dribbling]:
        sock.settimeout(10)
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408") and b"headers did not arrive" in answer
        assert sock.recv(4096) == b""  # and closed by the server
        sock.close()
    assert time.monotonic() - started > 1.5  # held until the deadline, not closed at once
    polite.close()
    assert _counted(client, "(headers)", 408) == counted + 21
    time.sleep(0.2)
    assert _open_files(pid) <= before + 1
    assert client.get("/health").status_code == 200


def test_every_response_is_counted_by_route_not_by_path(server):
    client = server["client"]
    for i in range(50):
        assert client.get(f"/no/such/path/{i}").status_code == 404
    assert _counted(client, "other", 404) >= 50
    assert "/no/such/path" not in client.get("/metrics").text
    unknown = _predict(client, {"flights": []}, model="not_a_model")
    assert unknown.status_code == 404 and _counted(client, PREDICT, 404) >= 1


def test_api_keys_guard_every_route_but_the_probes(served_home, tmp_path):
    home = served_home["home"]
    keys = tmp_path / "api_keys"
    made = subprocess.run([sys.executable, "-m", "unified_assets.cli", "api-key", "add",
                           "--file", str(keys)], capture_output=True, text=True, check=True,
                          env=dict(os.environ, UNIFIED_ASSETS_HOME=str(home)))
    key = made.stdout.split()[0]
    assert key not in keys.read_text() and len(key) >= 40
    process, url = serve(home, "--api-keys-file", str(keys))
    try:
        with httpx.Client(base_url=url, timeout=5) as anyone:
            for probe in ("/health", "/ready", "/metrics"):
                assert anyone.get(probe).status_code == 200, probe
            flight = _flights(home, DAY, limit=1)
            for headers in ({}, {"authorization": "Bearer not-the-key"},
                            {"authorization": key}):
                refused = anyone.post(f"/v1/models/{MODEL}/predict", json={"flights": flight},
                                      headers=headers)
                assert refused.status_code == 401
                assert refused.headers["www-authenticate"] == "Bearer"
            assert anyone.get("/v1/models").status_code == 401
            assert anyone.get("/docs").status_code == 401
            granted = anyone.post(f"/v1/models/{MODEL}/predict", json={"flights": flight},
                                  headers={"authorization": f"Bearer {key}"})
            assert granted.status_code == 200
            assert _counted(anyone, PREDICT, 401) == 3
    finally:
        stop(process)


def test_serve_refuses_an_open_address_without_keys(served_home):
    env = dict(os.environ, UNIFIED_ASSETS_HOME=str(served_home["home"]))
    done = subprocess.run([sys.executable, "-m", "unified_assets.cli", "serve", "--host",
                           "0.0.0.0", "--port", str(free_port()), "--api-keys-file",
                           "/nonexistent/keys"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 2
    assert "no API key is set" in done.stderr and "--no-auth" in done.stderr


def test_docs_need_no_internet(server):
    page = server["client"].get("/docs")
    assert page.status_code == 200 and "/v1/models/{model}/predict" in page.text
    assert "cdn" not in page.text.lower() and "<script" not in page.text.lower()
