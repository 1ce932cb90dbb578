"""Runs killed with SIGKILL at chosen points, then run again.

A real run of the platform (`dagster asset materialize`, or a model's training chain) is started
under `unified_assets_tests.support.killpoint`, which makes the process SIGKILL itself when it
reaches the point (inside a partition write, inside LightGBM's boosting loop, between a model's
metadata and its model file, inside a manifest write). Nothing can be cleaned up by the dying
process. Afterwards: the last good state is intact, nothing is doubled, every artifact has its
metadata and verifies, current.json parses and points at a verified model, and the next run
completes. The first test kills a bare transaction outside any run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from unified_assets.defs.partitions import daily
from unified_assets.lib.core import artifacts
from unified_assets.lib.deployment import manifests
from unified_assets.lib.raw import landing
from unified_assets_tests.support import train_small
from unified_assets_tests.support.programs import REPO
from unified_assets_tests.support.reads import data_rows, query, scalar
from unified_assets_tests.support.runs import POOL_LIMIT_1, run

DAY = "2013-01-02"
MODEL = "delay_classifier"
# Per table and day: rows and a hash over whole rows (lineage timestamps included), so any
# rewrite of a day shows, and so would a row doubled.
FINGERPRINTS = {
    "raw.flights": "partition_date",
    "warehouse.fct_flights": "flight_date",
    "warehouse.quarantine": "partition_date",
    "warehouse.ingest_audit": "partition_date",
}


def killed(point: str, module: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    """Run `python -m module args` with SIGKILL planted at `point`; it must die there."""
    done = subprocess.run(
        [sys.executable, "-m", "unified_assets_tests.support.killpoint", point, module, *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == -9, done.stderr[-3000:]
    assert f"killpoint: {point}" in done.stderr
    return done


def fingerprint(home: Path) -> dict[tuple[str, str], tuple[int, int]]:
    prints = {}
    for table, day in FINGERPRINTS.items():
        for when, rows, digest in query(
            home, f"SELECT {day}::VARCHAR, count(*), sum(hash(t)::HUGEINT) FROM {table} t "
            "GROUP BY 1",
        ):
            prints[(table, when)] = (rows, digest)
    return prints


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import date, datetime
    from pathlib import Path
    from unified_assets.lib.raw import ingest
    from unified_assets.lib.raw import landing
    from unified_assets.lib.core import database

    home = Path(sys.argv[1])
    conn = database.connect(home / "unified_assets.duckdb")
    day = date(2013, 1, 2)
    file = ingest.inspect_file(landing.daily_file(home, "flights", day), home, conn)
    with database.transaction(conn):
        ingest.replace_daily(conn, "flights", [(file, day)] * 3, day, date(2013, 1, 3),
                             datetime(2030, 1, 1))
        print("written, not committed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_process_killed_mid_write_leaves_the_previous_state(built):
    """A bare transaction, outside any run, killed before its commit."""
    home = built  # Jan 1-3 built (conftest.py)
    before = query(home, "SELECT count(*), max(_ingested_at) FROM raw.flights")
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(home)], capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == -9 and "written, not committed" in killed.stdout
    assert query(home, "SELECT count(*), max(_ingested_at) FROM raw.flights") == before
    # and the next run proceeds normally
    assert run(home, "2013-01-02", "2013-01-02", selection=["raw/flights"]).success
    assert scalar(home, "SELECT count(*) FROM raw.flights") == before[0][0]


# ----------------------------------------------------------------------------------------------
# A partition write inside a run, killed three ways, on an instance whose `duckdb` pool is
# limited to 1.


@pytest.fixture
def pooled(built, tmp_path, monkeypatch) -> tuple[Path, dict]:
    """A copy of the built Jan 1-3 home (conftest.py); a Dagster instance with the duckdb pool
    limited to 1."""
    home = built
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(POOL_LIMIT_1)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("UNIFIED_ASSETS_HOME", str(home))
    env = dict(os.environ, UNIFIED_ASSETS_LOCK_TIMEOUT_S="30")
    return home, env


@pytest.mark.parametrize(
    ("point", "selection"),
    [
        ("raw-uncommitted", "raw/flights,warehouse/fct_flights"),  # the day's raw rows inserted
        ("curated-uncommitted", "raw/flights,warehouse/fct_flights"),  # raw done, curation not
        ("raw-committed", "raw/flights"),  # written and committed, not yet recorded by Dagster
    ],
)
def test_a_partition_write_killed_then_run_again(pooled, point, selection):
    home, env = pooled
    before = fingerprint(home)
    killed(point, "dagster", "asset", "materialize", "-m", "unified_assets.definitions",
           "--select", selection, "--partition", DAY, env=env)

    after = fingerprint(home)
    if point == "raw-uncommitted":
        assert after == before  # not one row of the killed write is visible
    elif point == "curated-uncommitted":
        changed = {k for k in before if after.get(k) != before[k]}
        assert changed == {("raw.flights", DAY)}  # raw's step had committed; curation had not
    else:
        assert {k for k in before if after.get(k) != before[k]} == {("raw.flights", DAY)}
    # Whatever committed replaced the day, never added to it.
    landed = data_rows(landing.daily_file(home, "flights", date.fromisoformat(DAY)))
    assert after[("raw.flights", DAY)][0] == before[("raw.flights", DAY)][0] == landed

    with dg.DagsterInstance.get() as instance:
        # The killed run is still "started" for Dagster and still holds the pool's one slot:
        # every later DuckDB step would wait for it forever. Deleting the dead run frees it (or
        # force-terminate it in the UI, and the daemon's run monitoring frees a finished run's
        # slots after `free_slots_after_run_end_seconds`).
        records = instance.get_run_records()
        assert [r.dagster_run.status for r in records] == [dg.DagsterRunStatus.STARTED]
        if point == "raw-committed":  # the same after every kill point: looked at once
            slots = subprocess.run(
                [sys.executable, "-m", "dagster", "instance", "concurrency", "get", "duckdb"],
                env=env, capture_output=True, text=True, timeout=120,
            )
            assert '"duckdb": 1 / 1 slots occupied' in slots.stdout, slots.stderr[-2000:]
        instance.delete_run(records[0].dagster_run.run_id)

        again = run(home, DAY, DAY, selection=[dg.AssetKey.from_user_string(k)
                                               for k in selection.split(",")],
                    instance=instance)
        assert again.success
        status = instance.get_status_by_partition(dg.AssetKey(["raw", "flights"]), [DAY], daily)
        assert status == {DAY: dg.AssetPartitionStatus.MATERIALIZED}

    final = fingerprint(home)
    # The other days were never touched; the day holds its landing file once.
    assert {k: v for k, v in final.items() if k[1] != DAY} == {
        k: v for k, v in before.items() if k[1] != DAY
    }
    assert final[("raw.flights", DAY)][0] == landed
    assert final[("warehouse.fct_flights", DAY)][0] == before[("warehouse.fct_flights", DAY)][0]
    assert scalar(home, "SELECT count(*) FROM warehouse.ingest_audit WHERE rows_in <> curated "
                        "+ quarantined + duplicates") == 0
    assert scalar(home, "SELECT count(*) - count(DISTINCT (flight_date, carrier, flight, "
                        "origin, sched_dep_ts)) FROM warehouse.fct_flights") == 0


# ----------------------------------------------------------------------------------------------
# A model's run killed while training, while saving, while recording the decision.


def model_store(home: Path) -> dict[str, set[str]]:
    """The model files, metadata files and the side files written beside a model (its drift
    reference, its performance estimator) in the store, by sha256."""
    folder = artifacts.artifacts_root(home) / artifacts.MODELS
    names = [p.name for p in folder.iterdir() if not p.name.startswith(".")]
    side = {n for n in names if n.endswith((".reference.json", ".estimator.json"))}
    return {
        "models": {n.removesuffix(".txt") for n in names if n.endswith(".txt")},
        "metadata": {n.removesuffix(".json") for n in names
                     if n.endswith(".json") and n not in side},
        "references": {n.split(".")[0] for n in side},
    }


def assert_consistent(home: Path) -> dict:
    """Every model has its metadata and verifies; every hand-off between the model's steps
    verifies; every history file parses; current.json parses and points at a verified model.
    Returns current.json."""
    store = model_store(home)
    assert store["models"] <= store["metadata"]  # no model without its metadata
    assert store["references"] <= store["models"]  # side files only beside their model
    for sha in store["models"]:
        artifacts.load_model_text(home, sha)  # raises unless the bytes hash to the name
        assert artifacts.load_metadata(home, sha)["sha256"] == sha
    handoffs = artifacts.artifacts_root(home) / artifacts.HANDOFFS
    stored = list(handoffs.rglob("*.json"))
    assert {p.parent.name for p in stored} >= {f"{MODEL}_{s}" for s in ("training_set", "model")}
    for path in stored:  # raises unless the bytes hash to the name
        artifacts.load_handoff(home, path.parent.relative_to(handoffs).parts, path.stem)
    history = manifests.history(home, MODEL)
    assert all(entry["model"] == MODEL for entry in history)
    current = json.loads(manifests.current_path(home, MODEL).read_text())
    artifacts.load_model_text(home, current["artifact"]["sha256"])
    assert current["status"] == "promoted" and current["version"] == current["artifact"]["sha256"]
    return current


def test_a_model_run_killed_while_training_saving_or_deciding(featured):
    home = featured  # Jan 1-28 built up to the features (conftest.py); the model reads Jan 1-14
    env = dict(os.environ, UNIFIED_ASSETS_HOME=str(home))
    assert train_small.train_and_deploy(home, train_small.spec("champion")).success
    good = assert_consistent(home)
    current_bytes = manifests.current_path(home, MODEL).read_bytes()
    store, history = model_store(home), manifests.history(home, MODEL)
    challenger = ("unified_assets_tests.support.train_small", str(home), "challenger")

    # (a) inside LightGBM's boosting loop: nothing of the challenger reached the store.
    killed("training", *challenger, env=env)
    assert model_store(home) == store and manifests.history(home, MODEL) == history
    assert_consistent(home)
    assert manifests.current_path(home, MODEL).read_bytes() == current_bytes

    # (b) between the challenger's metadata and its model file: metadata alone is harmless
    # (never loaded without its model); no model appeared without metadata.
    killed("model-file", *challenger, env=env)
    grown = model_store(home)
    assert grown["models"] == store["models"] and len(grown["metadata"]) == 2
    assert_consistent(home)
    assert manifests.current_path(home, MODEL).read_bytes() == current_bytes

    # (c) saved, evaluated, the decision recorded in history; killed with current.json's new
    # bytes in its temp file, before the rename: current.json still names the champion, whole.
    killed("current-json", *challenger, env=env)
    decided = manifests.history(home, MODEL)
    assert len(decided) == len(history) + 1 and decided[-1]["status"] == "promoted"
    challenger_sha = decided[-1]["version"]
    saved = model_store(home)
    assert saved["models"] == saved["metadata"] and len(saved["models"]) == 2
    assert challenger_sha != good["version"] and challenger_sha in saved["models"]
    assert assert_consistent(home) == good
    assert manifests.current_path(home, MODEL).read_bytes() == current_bytes

    # Run again: it completes and promotes the challenger, from the same artifact.
    assert train_small.train_and_deploy(home, train_small.spec("challenger")).success
    now = assert_consistent(home)
    assert now["version"] == challenger_sha and now["previous_champion"] == good["version"]
    assert model_store(home) == saved  # the same model again: stored once, not twice
    # The decision of the killed run stays in history next to the completed one, and rolling
    # back still returns to the champion, not to the challenger's earlier entry.
    assert [e["version"] for e in manifests.history(home, MODEL)] == [
        good["version"],
        challenger_sha,
        challenger_sha,
    ]
    assert manifests.rollback(home, MODEL)["version"] == good["version"]
    assert_consistent(home)
