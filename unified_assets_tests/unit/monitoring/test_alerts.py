"""Alerts without a receiver: off means nothing written and no connection; one key is one
alert; a channel that fails is retried with a growing wait, then given up on; the payloads.
(Delivery to a real webhook and SMTP server: system/monitoring/test_alerts.py.)"""

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest

from unified_assets.lib.monitoring import alerts

ALERT = alerts.Alert("challenger_rejected", "rejected:m:1", "m: challenger rejected",
                     "slice gap 0.25 over 0.20", "m", {"version": "ab" * 32})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_with_no_channel_nothing_is_written_and_nothing_connects(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a connection was made with alerting off")

    monkeypatch.setattr(socket, "create_connection", no_network)
    assert alerts.raise_alert(tmp_path, ALERT, alerts.Channels()) == "off"
    assert alerts.deliver_pending(tmp_path, alerts.Channels()) == {
        "delivered": 0, "pending": 0, "given_up": 0}
    assert not alerts.outbox(tmp_path).exists()


def test_a_failing_channel_is_retried_with_a_growing_wait_then_given_up(tmp_path):
    channels = alerts.Channels(webhook_url=f"http://127.0.0.1:{_closed_port()}/hook",
                               timeout_s=1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert alerts.raise_alert(tmp_path, ALERT, channels, now=start) == "pending"
    # the same event again (the next sensor tick) is not a second alert
    assert alerts.raise_alert(tmp_path, ALERT, channels, now=start) == "duplicate"
    (path,) = alerts.outbox(tmp_path).glob("*.json")
    state = json.loads(path.read_text())["channels"]["webhook"]
    assert state["attempts"] == 1 and "Connection refused" in state["last_error"]
    assert state["next_try_at"] == (start + timedelta(seconds=30)).isoformat()
    # before the wait is over nothing is tried
    counts = alerts.deliver_pending(tmp_path, channels, now=start + timedelta(seconds=10))
    assert counts == {"delivered": 0, "pending": 1, "given_up": 0}
    assert json.loads(path.read_text())["channels"]["webhook"]["attempts"] == 1
    waits, now = [], start
    for _ in range(alerts.MAX_ATTEMPTS - 1):
        now = datetime.fromisoformat(json.loads(path.read_text())["channels"]["webhook"]
                                     ["next_try_at"])
        waits.append(now)
        counts = alerts.deliver_pending(tmp_path, channels, now=now)
    gaps = [(b - a).total_seconds() for a, b in zip([start, *waits], waits, strict=False)]
    assert gaps[:4] == [30, 60, 120, 240] and max(gaps) == alerts.MAX_RETRY_S
    assert counts == {"delivered": 0, "pending": 0, "given_up": 1}
    assert alerts.pending(tmp_path) == []


def test_payloads_and_settings():
    body = alerts.payload(ALERT, "json", "2026-01-01T00:00:00+00:00")
    assert body["kind"] == "challenger_rejected" and body["details"]["version"] == "ab" * 32
    slack = alerts.payload(ALERT, "slack", "2026-01-01T00:00:00+00:00")
    assert slack["text"].startswith("m: challenger rejected")
    assert slack["blocks"][0]["text"]["text"].startswith("*m: challenger rejected*")
    with pytest.raises(ValueError, match="format"):
        alerts.Channels(webhook_url="http://x", webhook_format="teams")
    with pytest.raises(ValueError, match="recipients"):
        alerts.Channels(smtp_host="mail")
    with pytest.raises(ValueError, match="unknown alert kind"):
        alerts.Alert("oops", "k", "t", "x")
    assert alerts.Channels(smtp_host="mail", smtp_to="a@x, b@y").recipients == ["a@x", "b@y"]


def test_an_outbox_that_cannot_be_written_leaves_the_alert_pending_and_raises_nothing(
        tmp_path, monkeypatch):
    channels = alerts.Channels(webhook_url=f"http://127.0.0.1:{_closed_port()}/hook")

    def unlockable(*args, **kwargs):
        raise PermissionError("read-only outbox")

    monkeypatch.setattr(alerts, "_locked", unlockable)
    assert alerts.raise_alert(tmp_path, ALERT, channels) == "pending"
    assert alerts.deliver_pending(tmp_path, channels)["pending"] == 1


def test_settled_alerts_move_to_the_archive_after_the_retention_pending_ones_stay(
        tmp_path, monkeypatch):
    channels = alerts.Channels(webhook_url=f"http://127.0.0.1:{_closed_port()}/hook",
                               timeout_s=1)
    outbox, start = alerts.outbox(tmp_path), datetime(2026, 1, 1, tzinfo=UTC)
    monkeypatch.setattr(alerts, "MAX_ATTEMPTS", 1)  # given up on at the first failure
    assert alerts.raise_alert(tmp_path, ALERT, channels, now=start) == "given_up"
    monkeypatch.setattr(alerts, "MAX_ATTEMPTS", 10)
    still = alerts.Alert("run_failed", "failed:run-1", "a run failed", "x")
    assert alerts.raise_alert(tmp_path, still, channels, now=start) == "pending"
    alerts.deliver_pending(tmp_path, channels, now=start + timedelta(days=29))
    assert len(list(outbox.glob("*.json"))) == 2  # within the retention: both stay
    alerts.deliver_pending(tmp_path, channels, now=start + timedelta(days=31))
    (left,) = outbox.glob("*.json")  # the pending one stays, whatever its age
    assert json.loads(left.read_text())["alert"]["key"] == "failed:run-1"
    (line,) = (outbox / "archive" / "2026-01.jsonl").read_text().splitlines()
    assert json.loads(line)["alert"]["key"] == ALERT.key  # archived whole, nothing lost
    assert len(list(outbox.glob("*.lock"))) == 1
    # its key may be raised again once archived
    assert alerts.raise_alert(tmp_path, ALERT, channels,
                              now=start + timedelta(days=32)) == "pending"
