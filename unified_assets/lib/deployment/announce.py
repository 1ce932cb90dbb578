"""After a deployment decision is recorded (a promotion, a rejection, a rollback): the alert,
and MLflow's `champion` alias moved to the version now serving. Neither can change the
decision, which the manifest holds; what failed comes back as a step's metadata."""

from __future__ import annotations

from pathlib import Path

from unified_assets.lib.core import artifacts
from unified_assets.lib.models import tracking
from unified_assets.lib.monitoring import alerts


def announce(home: Path, model: str, alert: alerts.Alert, channels: alerts.Channels,
             tracker: tracking.Tracking, serving: str | None) -> dict:
    """Raise `alert`; when `serving` (the sha256 now in service) is given, point `champion`
    at it. The metadata: the alert's fate (unless alerts are off), MLflow's run and version or
    its warning."""
    told = {}
    raised = alerts.raise_alert(home, alert, channels)
    if raised != "off":
        told["alert"] = raised
    if serving:
        told |= tracking.attempt(tracker, "champion alias", lambda: tracking.set_champion(
            tracker, model=model, sha256=serving,
            model_text=lambda: artifacts.load_model_text(home, serving)))
    return told
