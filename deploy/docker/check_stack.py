"""Waits for the container stack of deploy/compose.yaml, then (with --run) checks it works:

    python3 deploy/docker/check_stack.py            # wait: the UI and `serve` /ready answer
    .venv/bin/python deploy/docker/check_stack.py --run

--run lands two days into the stack's home volume (a one-off container), launches the job
`ingest_reference` through the webserver's GraphQL API, and waits for the daemon to dequeue,
launch and finish it: the instance's queued run coordinator starts runs only from the daemon.
Exits non-zero with the reason when anything does not answer or the run does not succeed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

UI = f"http://127.0.0.1:{os.environ.get('UNIFIED_ASSETS_UI_PORT', '3000')}"
SERVE = f"http://127.0.0.1:{os.environ.get('UNIFIED_ASSETS_SERVE_PORT', '8080')}"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait(url: str, what: str, timeout_s: float, ok=(200,)) -> tuple[int, str, float]:
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < timeout_s:
        try:
            status, body = get(url)
            if status in ok:
                return status, body, time.monotonic() - started
            last = f"HTTP {status}: {body[:200]}"
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(1)
    sys.exit(f"FAIL {what} ({url}) did not answer in {timeout_s:.0f} s: {last}")


def run_through_the_daemon(compose: list[str]) -> None:
    from dagster_graphql import DagsterGraphQLClient

    land = [*compose, "run", "--rm", "--no-deps", "daemon", "unified-assets", "land",
            "--through", "2013-01-02"]
    subprocess.run(land, check=True, stdout=subprocess.DEVNULL)
    print("landed 2013-01-01..02 in the stack's home volume")
    client = DagsterGraphQLClient("127.0.0.1", port_number=int(UI.rsplit(":", 1)[1]))
    run_id = client.submit_job_execution("ingest_reference")
    print(f"launched ingest_reference through the UI's API: run {run_id[:8]} (queued)")
    started, seen = time.monotonic(), []
    while time.monotonic() - started < 600:
        status = client.get_run_status(run_id).value
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(1)
    print(f"run {run_id[:8]}: {' -> '.join(seen)} in {time.monotonic() - started:.0f} s")
    if seen[-1] != "SUCCESS":
        sys.exit(f"FAIL the run ended {seen[-1]}")
    status = subprocess.run([*compose, "exec", "-T", "daemon", "unified-assets", "status"],
                            check=True, capture_output=True, text=True).stdout
    print("\n".join(line for line in status.splitlines() if "dim_" in line))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", action="store_true")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    compose = json.loads(os.environ.get("STACK_COMPOSE", "[]")) or [
        "docker-compose", "-f", "deploy/compose.yaml", "-p", "unified-assets"]
    _, _, seconds = wait(f"{UI}/server_info", "the Dagster UI", args.timeout)
    print(f"the Dagster UI answers on {UI} ({seconds:.0f} s)")
    status, body, seconds = wait(f"{SERVE}/ready", "serve /ready", args.timeout)
    print(f"serve /ready answers {status} on {SERVE} ({seconds:.0f} s more): {body}")
    if args.run:
        run_through_the_daemon(compose)


if __name__ == "__main__":
    main()
