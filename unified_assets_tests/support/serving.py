"""A real `unified-assets serve` process for the serving tests, and the home it serves: two
real weeks of January 2013 with two promoted versions of the delay classifier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import httpx

from unified_assets.lib.deployment import manifests
from unified_assets.lib.raw import landing
from unified_assets_tests.support.receivers import free_port
from unified_assets_tests.support.runs import FEATURES_UP, all_assets, run_assets
from unified_assets_tests.support.runs import train_and_deploy as deploy
from unified_assets_tests.support.train_small import FEATURE_DAYS
from unified_assets_tests.support.train_small import spec as small_spec

MODEL = "delay_classifier"
ONLINE_STORE = dg.AssetKey(["serving", "online_store"])
VERSIONS = "served_versions.json"


def build_served_home(home: Path) -> None:
    """Jan 1-14 features; the champion promoted, then the challenger; the online store; the
    batch predictions of Jan 14 by the challenger. The two manifests go to VERSIONS."""
    landing.land(home, through=date(2013, 1, 15))
    assets = all_assets()
    assert run_assets(home, assets, FEATURES_UP, *FEATURE_DAYS).success
    assert deploy(home, small_spec("champion")).success
    champion = manifests.current(home, MODEL)
    assert deploy(home, small_spec("challenger")).success
    challenger = manifests.current(home, MODEL)
    assert challenger["version"] != champion["version"]
    assert run_assets(home, assets, [ONLINE_STORE]).success
    (home / VERSIONS).write_text(json.dumps({"champion": champion, "challenger": challenger}))


def serve(home: Path, *options: str) -> tuple[subprocess.Popen, str]:
    """`unified-assets serve` over `home` on a free loopback port, ready."""
    port = free_port()
    env = dict(os.environ, UNIFIED_ASSETS_HOME=str(home))
    command = [sys.executable, "-m", "unified_assets.cli", "serve", "--port", str(port), *options]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=url, timeout=5) as client:
        while True:
            try:
                if client.get("/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the service did not become ready in 60 s"
            time.sleep(0.2)
    return process, url


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=20)
    process.stdout.close()
