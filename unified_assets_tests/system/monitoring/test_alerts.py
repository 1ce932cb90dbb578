"""Every alert kind raised where its event happens, through the real step, sensor, command or
service, and delivered exactly once to a real webhook receiver and a real SMTP server on
loopback; the same event seen again (the next sensor tick, a restarted service) is not sent
again, and a receiver that was down gets it when it is back."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from unified_assets import cli
from unified_assets.defs.monitoring.sensors import record_failed_runs
from unified_assets.lib.core import config, database
from unified_assets.lib.deployment import manifests
from unified_assets.lib.monitoring import alerts, model_health
from unified_assets.online.service import Service, ServiceConfig
from unified_assets_tests.support.receivers import Mailbox, Webhook
from unified_assets_tests.support.runs import resources_for, tick, train_and_deploy
from unified_assets_tests.support.train_small import spec as small_spec

MODEL = "delay_classifier"


@pytest.fixture
def receivers():
    with Webhook() as webhook, Mailbox() as mailbox:
        settings = {"alert_webhook_url": webhook.url, "alert_smtp_host": "127.0.0.1",
                    "alert_smtp_port": mailbox.port, "alert_smtp_to": "oncall@example.com"}
        yield webhook, mailbox, settings


def delivered(webhook: Webhook, mailbox: Mailbox) -> Counter:
    """Alert kinds as both receivers got them; each must have come once to each."""
    kinds = Counter(webhook.kinds())
    mailed = Counter(m["X-Unified-Assets-Alert"] for m in mailbox.messages)
    assert all(f"kind: {m['X-Unified-Assets-Alert']}" in m.get_content()
               for m in mailbox.messages)
    assert kinds == mailed, (kinds, mailed)
    return kinds


def test_deployment_decisions_and_a_failed_run_are_told_once(featured, receivers, monkeypatch):
    webhook, mailbox, settings = receivers
    champion = small_spec("champion")
    assert train_and_deploy(featured, champion, **settings).success
    assert webhook.bodies[-1]["kind"] == "promoted"
    assert webhook.bodies[-1]["details"]["version"] == manifests.current(featured, MODEL)[
        "version"]
    strict = dataclasses.replace(champion, gates=dataclasses.replace(champion.gates,
                                                                     max_slice_gap=0.0))
    assert train_and_deploy(featured, strict, **settings).success
    rejected = webhook.bodies[-1]
    assert rejected["kind"] == "challenger_rejected" and "slice" in rejected["text"]
    assert train_and_deploy(featured, small_spec("challenger"), **settings).success
    # a rollback from the command line, with the settings from the environment
    monkeypatch.setenv("UNIFIED_ASSETS_HOME", str(featured))
    monkeypatch.setenv("UNIFIED_ASSETS_ALERT_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("UNIFIED_ASSETS_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("UNIFIED_ASSETS_ALERT_SMTP_PORT", str(mailbox.port))
    monkeypatch.setenv("UNIFIED_ASSETS_ALERT_SMTP_TO", "oncall@example.com")
    assert cli.main(["rollback", MODEL, "--reason", "bad numbers"]) == 0
    assert "bad numbers" in webhook.bodies[-1]["text"]

    # a run that fails, seen by the run-failure sensor (twice: the daemon may tick again)
    with dg.DagsterInstance.ephemeral() as instance:
        february = dataclasses.replace(champion, train=(date(2013, 2, 1), date(2013, 2, 8)))
        failed = train_and_deploy(featured, february, instance=instance, **settings)
        assert not failed.success
        event = next(e for e in failed.all_events
                     if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        for _ in range(2):
            with dg.build_run_status_sensor_context(
                sensor_name="record_failed_runs", dagster_event=event, dagster_instance=instance,
                dagster_run=failed.dagster_run, resources=resources_for(featured, **settings),
            ) as context:
                record_failed_runs(context.for_run_failure())
    assert webhook.bodies[-1]["kind"] == "run_failed"
    assert webhook.bodies[-1]["details"]["run_id"] == failed.run_id
    assert "models__delay_classifier_training_set" in webhook.bodies[-1]["text"]
    assert delivered(webhook, mailbox) == Counter(
        promoted=2, challenger_rejected=1, rolled_back=1, run_failed=1)
    assert mailbox.messages[0]["To"] == "oncall@example.com"


def _monitored(home, days: list[tuple[date, bool]], version: str):
    conn = database.connect(config.warehouse_path(home))
    try:
        database.ensure_schemas(conn)
        for day, broken in days:
            row = {"model": MODEL, "day": day, "model_version": version, "rows": 6300,
                   "prediction_psi": 0.01, "max_feature_psi": 0.1, "drifted_features": 0,
                   "drifted_share": 0.0, "is_drift": False, "input_dq": 0.99,
                   "inputs_broken": broken, "top_features": "", "measured_at": datetime.now(UTC)}
            model_health.replace_days(conn, model_health.DRIFT_TABLE, MODEL, day,
                                      day + timedelta(days=1), pd.DataFrame([row]))
    finally:
        conn.close()


def test_the_retraining_sensor_tells_a_broken_feed_and_an_overdue_model_once(
        home, defs, instance, receivers):
    webhook, mailbox, settings = receivers
    name = f"retrain_{MODEL}_sensor"
    version = "c" * 64
    manifests.record(home, MODEL, {"model": MODEL, "version": version, "status": "promoted",
                                   "windows": {"test": ["2013-05-01", "2013-05-15"]}})
    start = date(2013, 5, 16)
    _monitored(home, [(start + timedelta(days=i), i >= 2) for i in range(3)], version)
    requests, result, cursor = tick(defs, name, home, instance, None, **settings)
    assert requests == [] and "broken feed" in result.skip_message
    _monitored(home, [(start + timedelta(days=3), True)], version)  # still broken next day
    requests, result, cursor = tick(defs, name, home, instance, cursor, **settings)
    assert requests == [] and "broken feed" in result.skip_message
    assert delivered(webhook, mailbox) == Counter(feed_refused=1)
    assert webhook.bodies[0]["details"]["since"] == "2013-05-18"

    # the feed is repaired; the model ages past its limit (30 days) and nothing replaces it
    for day in (date(2013, 6, 14) + timedelta(days=i) for i in range(3)):
        _monitored(home, [(day, False)], version)
        tick(defs, name, home, instance, str(day - timedelta(days=1)), **settings)
    overdue = [b for b in webhook.bodies if b["kind"] == "model_overdue"]
    assert len(overdue) == 1 and overdue[0]["details"]["version"] == version
    assert overdue[0]["details"]["age_days"] == 31  # the day after the age retraining's day
    assert delivered(webhook, mailbox) == Counter(feed_refused=1, model_overdue=1)


def test_a_refused_artifact_is_told_once_per_manifest_also_after_a_restart(tmp_path, receivers):
    webhook, mailbox, settings = receivers
    channels = alerts.Channels(webhook_url=webhook.url, smtp_host="127.0.0.1",
                               smtp_port=mailbox.port, smtp_to="oncall@example.com")
    manifests.record(tmp_path, MODEL, {"model": MODEL, "version": "d" * 64,
                                       "status": "promoted"})
    webhook.failing = True  # the receiver is down when the refusal happens
    service = Service(ServiceConfig(tmp_path, alerts=channels, log_requests=False))
    service.registry.refresh()
    assert service.registry.states[MODEL].refused
    assert webhook.bodies == [] and len(mailbox.messages) == 1
    # the service tries the manifest again: not a new alert
    service.registry.states[MODEL].retry_at = 0.0
    service.registry.refresh()
    # a restarted service refuses the same manifest: the same alert, not sent again
    Service(ServiceConfig(tmp_path, alerts=channels, log_requests=False)).registry.refresh()
    # the receiver is back: the deliver_alerts sensor's retry gets it there, once
    webhook.failing = False
    later = datetime.now(UTC) + timedelta(hours=1)
    assert alerts.deliver_pending(tmp_path, channels, now=later)["delivered"] == 1
    assert alerts.deliver_pending(tmp_path, channels, now=later)["delivered"] == 0
    assert delivered(webhook, mailbox) == Counter(artifact_refused=1)
    assert webhook.bodies[0]["details"]["manifest_sha256"]
