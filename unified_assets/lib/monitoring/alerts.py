"""Alerts: telling a person when the platform needs one, or did something they should know.

An alert is raised where the event happens (a failed run, a retraining refused on a broken
feed, a rejected challenger, a promotion or rollback, a model past its age, an artifact the
prediction service refused) and goes to the channels that are configured: a JSON webhook (or a
Slack-compatible one) and e-mail over SMTP. All are off by default; with none configured,
nothing is written and no connection is made.

Each alert has a key, and one key is one alert, ever: the outbox in `monitoring/alerts/` keeps
one file per key, created atomically, so a broken feed seen on every sensor tick is told once.
Delivery is tried at once, with a short timeout, and a channel that fails is tried again later
(`deliver_pending`, which the `deliver_alerts` sensor calls) with a growing wait. Raising an
alert never raises an error and never fails the step that raised it. An alert settled (every
channel delivered or given up) more than `RETENTION_DAYS` ago moves to
`monitoring/alerts/archive/<month raised>.jsonl`, so the outbox the sensor reads each minute
holds recent alerts only; its key may then be raised again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import smtplib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from unified_assets.lib.core import files

log = logging.getLogger(__name__)

KINDS = {
    "run_failed": "a run failed",
    "feed_refused": "a retraining was refused: its inputs come from a broken feed",
    "challenger_rejected": "the gates rejected a challenger; the champion keeps serving",
    "promoted": "a model was promoted",
    "rolled_back": "a model was rolled back",
    "model_overdue": "a model is past its maximum age with no successful retraining",
    "artifact_refused": "the prediction service refused a promoted artifact",
}
FORMATS = ("json", "slack")
FIRST_RETRY_S = 30.0  # a failed channel is tried again after 30 s, then 60, 120 ... 1 h
MAX_RETRY_S = 3600.0
MAX_ATTEMPTS = 10  # then the channel is given up on, and the outbox says so
RETENTION_DAYS = 30  # a settled alert stays in the outbox this long, then is archived


@dataclass(frozen=True)
class Alert:
    kind: str  # one of KINDS
    key: str  # what makes it one event: the same key is never sent twice
    title: str
    text: str
    model: str | None = None
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}; known: {sorted(KINDS)}")


@dataclass(frozen=True)
class Channels:
    """Where alerts go; each channel is on when its address is set."""

    webhook_url: str = ""
    webhook_format: str = "json"  # "json": the alert as is; "slack": Slack's {"text", "blocks"}
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "unified-assets@localhost"
    smtp_to: str = ""  # comma-separated addresses
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    timeout_s: float = 5.0

    def __post_init__(self):
        if self.webhook_format not in FORMATS:
            raise ValueError(f"alert webhook format must be one of {FORMATS}, "
                             f"not {self.webhook_format!r}")
        if self.smtp_host and not self.recipients:
            raise ValueError("alert e-mail needs recipients (alert_smtp_to) beside its host")

    @property
    def recipients(self) -> list[str]:
        return [a.strip() for a in self.smtp_to.split(",") if a.strip()]

    @property
    def names(self) -> list[str]:
        return (["webhook"] if self.webhook_url else []) + (["email"] if self.smtp_host else [])

    @property
    def enabled(self) -> bool:
        return bool(self.names)


def outbox(home: Path) -> Path:
    return Path(home) / "monitoring" / "alerts"


def _path(home: Path, key: str) -> Path:
    return outbox(home) / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")


def raise_alert(home: Path, alert: Alert, channels: Channels,
                now: datetime | None = None) -> str:
    """Record `alert` once and try to deliver it: "off" (no channel), "duplicate" (its key was
    raised before), "delivered", or "pending" (a channel failed; it is retried later)."""
    if not channels.enabled:
        return "off"
    now = now or datetime.now(UTC)
    path = _path(home, alert.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"alert": asdict(alert), "raised_at": now.isoformat(),
                "channels": {name: {"attempts": 0} for name in channels.names}}
    try:
        with open(path, "x") as new:  # atomic: of two processes raising one key, one wins
            json.dump(document, new, indent=1, sort_keys=True, default=str)
    except FileExistsError:
        return "duplicate"
    except OSError as exc:
        log.warning("alert %s could not be recorded: %s", alert.key, exc)
        return "pending"
    return _deliver_safely(path, channels, now)


def deliver_pending(home: Path, channels: Channels, now: datetime | None = None
                    ) -> dict[str, int]:
    """Try again every channel whose delivery failed and whose wait is over; of the alerts
    that were pending, how many are now delivered, still pending, and given up."""
    counts = {"delivered": 0, "pending": 0, "given_up": 0}
    if not channels.enabled or not outbox(home).is_dir():
        return counts
    now = now or datetime.now(UTC)
    for path in sorted(outbox(home).glob("*.json")):
        document = _read(path)
        if _state(document) == "pending":
            counts[_deliver_safely(path, channels, now)] += 1
        elif _raised_before(document, now - timedelta(days=RETENTION_DAYS)):
            _archive_safely(path)
    return counts


def _raised_before(document: dict, moment: datetime) -> bool:
    try:
        return datetime.fromisoformat(document["raised_at"]) < moment
    except (KeyError, TypeError, ValueError):
        return False


def _archive_safely(path: Path) -> None:
    """Append a settled alert to the month's archive, then take it out of the outbox."""
    try:
        with _locked(path) as mine:
            document = _read(path)
            if not mine or _state(document) == "pending" or "raised_at" not in document:
                return
            archive = path.parent / "archive" / f"{document['raised_at'][:7]}.jsonl"
            archive.parent.mkdir(exist_ok=True)
            with open(archive, "a") as out:
                out.write(json.dumps(document, sort_keys=True, default=str) + "\n")
            path.unlink()
        path.with_suffix(".lock").unlink(missing_ok=True)
    except OSError as exc:  # kept in the outbox; tried again on the next pass
        log.warning("alert %s could not be archived: %s", path.name, exc)


def pending(home: Path) -> list[dict]:
    """The alerts some channel has not taken yet (nor given up on)."""
    if not outbox(home).is_dir():
        return []
    documents = [_read(p) for p in sorted(outbox(home).glob("*.json"))]
    return [d for d in documents if _state(d) == "pending"]


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"channels": {}}


def _state(document: dict) -> str:
    states = ["delivered" if c.get("delivered_at") else "given_up" if c.get("given_up_at")
              else "pending" for c in document.get("channels", {}).values()]
    if "pending" in states:
        return "pending"
    return "given_up" if "given_up" in states else "delivered"


@contextmanager
def _locked(path: Path) -> Iterator[bool]:
    """Hold the alert's lock, or yield False when another process is delivering it."""
    with open(path.with_suffix(".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _deliver_safely(path: Path, channels: Channels, now: datetime) -> str:
    """`_deliver`, whose own failures (an outbox it cannot lock or rewrite) leave the alert
    pending for the next try instead of reaching the step that raised it."""
    try:
        return _deliver(path, channels, now)
    except Exception as exc:  # an alert never fails what raised it
        log.warning("alert %s: delivery could not be attempted: %s", path.name, exc)
        return "pending"


def _deliver(path: Path, channels: Channels, now: datetime) -> str:
    with _locked(path) as mine:
        document = _read(path)
        if not mine:
            return _state(document)
        alert = Alert(**document["alert"])
        for name, state in document["channels"].items():
            due = state.get("next_try_at")
            if state.get("delivered_at") or state.get("given_up_at") or (
                    due and datetime.fromisoformat(due) > now) or name not in channels.names:
                continue
            state["attempts"] = state.get("attempts", 0) + 1
            try:
                SENDERS[name](alert, channels, document["raised_at"])
            except Exception as exc:  # every failure of a channel is a retry, never a crash
                state["last_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                wait = min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** (state["attempts"] - 1))
                state["next_try_at"] = (now + timedelta(seconds=wait)).isoformat()
                if state["attempts"] >= MAX_ATTEMPTS:
                    state["given_up_at"] = now.isoformat()
                log.warning("alert %s via %s failed (attempt %d): %s", alert.kind, name,
                            state["attempts"], state["last_error"])
            else:
                state["delivered_at"] = now.isoformat()
                state.pop("next_try_at", None)
        files.write_atomic(path, json.dumps(document, indent=1, sort_keys=True,
                                            default=str).encode())
        return _state(document)


# -- the channels --------------------------------------------------------------------------
def payload(alert: Alert, webhook_format: str, raised_at: str) -> dict:
    """The webhook's JSON body: the alert as is, or Slack's incoming-webhook message."""
    if webhook_format == "slack":
        facts = " · ".join(f"{k}: {v}" for k, v in alert.details.items())
        return {
            "text": f"{alert.title}: {alert.text}",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn",
                                             "text": f"*{alert.title}*\n{alert.text}"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": (
                    f"unified_assets · {alert.kind}"
                    + (f" · {alert.model}" if alert.model else "")
                    + (f" · {facts}" if facts else ""))[:2900]}]},
            ],
        }
    return {"source": "unified_assets", "raised_at": raised_at} | asdict(alert)


def _post(alert: Alert, channels: Channels, raised_at: str) -> None:
    body = json.dumps(payload(alert, channels.webhook_format, raised_at), default=str).encode()
    request = urllib.request.Request(channels.webhook_url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=channels.timeout_s) as response:
        response.read()  # a status outside 2xx raises HTTPError


def _mail(alert: Alert, channels: Channels, raised_at: str) -> None:
    message = EmailMessage()
    message["Subject"] = f"[unified_assets] {alert.title}"
    message["From"] = channels.smtp_from
    message["To"] = ", ".join(channels.recipients)
    message["X-Unified-Assets-Alert"] = alert.kind  # for mail filters
    facts = "\n".join(f"  {k}: {v}" for k, v in alert.details.items())
    message.set_content(f"{alert.text}\n\nkind: {alert.kind}\nmodel: {alert.model or '-'}\n"
                        f"raised at: {raised_at}\n" + (f"details:\n{facts}\n" if facts else ""))
    with smtplib.SMTP(channels.smtp_host, channels.smtp_port,
                      timeout=channels.timeout_s) as smtp:
        if channels.smtp_starttls:
            smtp.starttls()
        if channels.smtp_user:
            smtp.login(channels.smtp_user, channels.smtp_password)
        smtp.send_message(message)


SENDERS = {"webhook": _post, "email": _mail}


# -- the events ------------------------------------------------------------------------------
def decision(model: str, document: dict, history_file: str) -> Alert:
    """A deployment decision: a promotion, or a challenger the gates rejected."""
    version = document["version"]
    if document["status"] == "promoted":
        return Alert("promoted", f"promoted:{model}:{history_file}",
                     f"{model}: {version[:12]} promoted",
                     f"{model} now serves {version[:12]} (AMDR {document['amdr']['value']:.3f}).",
                     model, {"version": version, "history_file": history_file})
    return Alert("challenger_rejected", f"rejected:{model}:{history_file}",
                 f"{model}: challenger {version[:12]} rejected",
                 f"The gates rejected {version[:12]}; the champion keeps serving. "
                 + "; ".join(document.get("reasons", [])),
                 model, {"version": version, "history_file": history_file})


def rolled_back(model: str, restored: dict) -> Alert:
    return Alert("rolled_back", f"rolled_back:{model}:{restored['rolled_back_at']}",
                 f"{model}: rolled back to {restored['version'][:12]}",
                 f"{restored['rolled_back_from'][:12]} was withdrawn "
                 f"({restored['rollback_reason']}); {restored['version'][:12]} serves again.",
                 model,
                 {"from_version": restored["rolled_back_from"], "to_version": restored["version"]})


def failed_run(run: dict) -> Alert:
    what = f"{run['job']}" + (f" ({run['model']}, {run['kind']})" if run.get("model") else "")
    return Alert("run_failed", f"run_failed:{run['run_id']}", f"run failed: {what}",
                 str(run.get("error") or "")[:1500], run.get("model"),
                 {"run_id": run["run_id"], "job": run["job"], "reason": run.get("reason")})


def refused_feed(model: str, since: str, latest: str, message: str) -> Alert:
    """One broken feed is one alert: the key is the first broken day of the streak."""
    return Alert("feed_refused", f"feed_refused:{model}:{since}",
                 f"{model}: retraining refused, broken feed since {since}",
                 f"{message} (monitored days {since}..{latest}).", model,
                 {"since": since, "latest": latest})


def overdue(model: str, version: str, age_days: int, max_age_days: int) -> Alert:
    """Once per serving version."""
    return Alert("model_overdue", f"overdue:{model}:{version}",
                 f"{model}: {age_days} days old, past its limit of {max_age_days}",
                 f"{version[:12]} still serves: no retraining since it passed its maximum age "
                 "has been promoted. Look at the retraining runs and their gates.", model,
                 {"version": version, "age_days": age_days, "max_age_days": max_age_days})


def refused_artifact(model: str, manifest_sha256: str, reason: str) -> Alert:
    """Once per manifest the prediction service refused."""
    return Alert("artifact_refused", f"artifact_refused:{model}:{manifest_sha256}",
                 f"{model}: the prediction service refused the promoted artifact",
                 f"The service keeps serving its current model: {reason[:800]}", model,
                 {"manifest_sha256": manifest_sha256})
