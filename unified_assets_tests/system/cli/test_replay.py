"""A short replay: real days through the real sensors, schedule and runs, on a small model
budget, long enough for the loop to retrain a model on its own."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from unified_assets.lib.deployment import manifests
from unified_assets_tests.support.reads import query

BIN = Path(sys.executable).parent


def test_a_few_weeks_replayed_retrain_and_grow_the_manifest_history(tmp_path):
    base = tmp_path / "data"
    env = dict(os.environ, UNIFIED_ASSETS_HOME=str(base), UNIFIED_ASSETS_ROLLING_DAYS="14,7,7",
               UNIFIED_ASSETS_RETRAIN_DRIFT_DAYS="1",
               UNIFIED_ASSETS_RETRAIN_COOLDOWN_DAYS="5")
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run(
        [str(BIN / "unified-assets"), "replay", "--start", "2013-01-01", "--end", "2013-02-18",
         "--bootstrap-end", "2013-02-04", "--budget", "1", "--models", "delay_classifier"],
        env=env, capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    home = base / "replay"
    ledger = json.loads((home / "replay_ledger.json").read_text())

    # every landed day was ingested exactly once, by the landing sensor
    ingested = [r["partition"] for r in ledger["runs"] if r["job"] == "ingest_daily"]
    assert len(ingested) == len(set(ingested)) == 49
    # the instance, kept in memory while the replay ran, is now on disk with every run and event
    assert not (home / "dagster_home").is_symlink()
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        assert len(instance.get_runs(dg.RunsFilter(job_name="ingest_daily"))) == 49
        flights = instance.fetch_materializations(dg.AssetKey(["raw", "flights"]), limit=100)
        assert sorted(r.partition_key for r in flights.records) == sorted(ingested)
    # every run succeeded, a retraining whose challenger a gate rejected too: a decision
    assert [r for r in ledger["runs"] if not r["success"]] == []
    # the bootstrap day is scored by the nightly backstop (its model came after its landing
    # run); every later day by its own landing run, so the schedule then has nothing to do
    scored = [r["partition"] for r in ledger["runs"] if r["job"] == "nightly_scoring"]
    assert scored == ["2013-02-04"]
    assert ledger["skips"]["nightly_scoring"] >= 14
    assert query(home, "SELECT count(DISTINCT day) FROM monitoring.drift_daily")[0][0] == 15
    # realized AUC of each matured day (noisy: a blizzard day has a third of the flights)
    days, pooled = query(home, "SELECT count(*), sum(value * rows) / sum(rows) FROM "
                               "monitoring.performance_daily WHERE metric = 'auc'")[0]
    assert days == 14 and 0.55 < pooled < 0.85

    # the loop retrained on its own, said why, and each decision is in the manifest history
    events = ledger["retrainings"]
    assert events[0]["reason"] == "bootstrap" and events[0]["status"] == "promoted"
    automatic = [e for e in events if e["reason"] in ("drift", "performance")]
    assert automatic, events
    assert all(e["evidence"] and e["as_of"] for e in automatic)
    history = manifests.history(home, "delay_classifier")
    assert len(history) == len(events) >= 2

    report = (base / "reports" / "replay.md").read_text()
    assert "### Retrainings" in report and "### Drift by month" in report
    assert (base / "reports" / "replay_delay_classifier_drift.png").stat().st_size > 10_000
    assert (base / "reports" / "replay_delay_classifier_realized.png").exists()
    # the loop beside the fixed alternatives on the same rows: frozen and a monthly calendar
    assert "### The loop against the fixed alternatives, on the same rows" in report
    comparison = report.split("### The loop against the fixed alternatives")[1]
    for column in ("automatic AUC", "calendar AUC", "frozen AUC", "trainings (training seconds)"):
        assert column in comparison
    assert "2013-02" in comparison and "March–December" not in comparison  # replay ends in Feb

    # the weekly scorecard ran on the replayed Mondays and shows every KPI
    scorecard = (home / "reports" / "kpi_scorecard.md").read_text()
    for section in ("FEE, V_val, AMDR", "L_dp", "DQ per table", "Rel_cicd", "EV"):
        assert section in scorecard
    weeks = query(home, "SELECT count(DISTINCT measured_at) FROM monitoring.kpi_history")[0][0]
    assert weeks == 7  # the Mondays from Jan 7 to Feb 18, dated by their schedule
    kpi = dict(query(home, "SELECT kpi, value FROM monitoring.kpi_history "
                           "WHERE measured_at = '2013-02-18 06:00:00'"))
    assert 0 < kpi["delay_classifier_amdr"] <= 1 and 0 < kpi["dq_min"] <= 1
    assert kpi["rel_cicd"] == 1.0 and kpi["ev"] > 0  # a gate's rejection is no failure
    assert kpi["delay_classifier_l_dp"] > 0


def test_a_replay_that_ends_before_the_first_model_still_reports(tmp_path):
    """Days before --bootstrap-end have nothing to score: the replay ingests them and its
    report says so, instead of failing on predictions that do not exist yet."""
    base = tmp_path / "data"
    env = dict(os.environ, UNIFIED_ASSETS_HOME=str(base))
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run(
        [str(BIN / "unified-assets"), "replay", "--start", "2013-01-01", "--end", "2013-01-02"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    ledger = json.loads((base / "replay" / "replay_ledger.json").read_text())
    assert [r["partition"] for r in ledger["runs"] if r["job"] == "ingest_daily"] == [
        "2013-01-01", "2013-01-02"
    ]
    assert not ledger["retrainings"]
    assert "ingest_daily" in (base / "reports" / "replay.md").read_text()
