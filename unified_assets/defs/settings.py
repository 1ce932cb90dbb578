"""The platform's settings: the home folder's layout and every threshold, weight and switch,
each defaulting to its `UNIFIED_ASSETS_*` environment variable. One Dagster resource, which the
UI's resource page shows with the values a code location runs with; `lib/` receives them as
arguments. It loads none of the heavy libraries, so `unified-assets serve` reads it quickly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, ValidationError

from unified_assets.lib.core import config, database
from unified_assets.lib.core.config import QualitySettings
from unified_assets.lib.features.flight_table import LEAD_MINUTES
from unified_assets.lib.models.specs import Rolling
from unified_assets.lib.models.tracking import Tracking
from unified_assets.lib.monitoring import alerts
from unified_assets.lib.monitoring.drift_policy import DriftPolicy
from unified_assets.lib.monitoring.kpis import KpiSettings
from unified_assets.lib.monitoring.retraining import RetrainPolicy

if TYPE_CHECKING:
    from unified_assets.lib.models.specs import ModelSpec

ENV_PREFIX = "UNIFIED_ASSETS_"
# Each default is declared once, by the lib/ policy that uses it; the fields below take theirs.
_QUALITY, _RETRAIN, _DRIFT, _KPI = QualitySettings(), RetrainPolicy(), DriftPolicy(), KpiSettings()
_ALERTS = alerts.Channels()


class Settings(dg.ConfigurableResource):
    """Where the platform keeps its files, and every setting of its layers.

    Each field's environment variable is its name in capitals after `UNIFIED_ASSETS_`
    (`home` is `UNIFIED_ASSETS_HOME`, `lock_timeout_s` is `UNIFIED_ASSETS_LOCK_TIMEOUT_S`).
    """

    home: str = Field(
        default="",
        description="Where every file the platform writes lives; empty: data/ in the repository.",
    )
    lock_timeout_s: float = Field(
        default=database.LOCK_TIMEOUT_S,
        description="Seconds a run waits for the warehouse file while another process holds it.",
    )
    dq_alpha: float = Field(
        default=_QUALITY.alpha,
        description="DQ weight of completeness.",
    )
    dq_beta: float = Field(
        default=_QUALITY.beta,
        description="DQ weight of accuracy.",
    )
    dq_gamma: float = Field(
        default=_QUALITY.gamma,
        description="DQ weight of validity.",
    )
    max_quarantine_share: float = Field(
        default=_QUALITY.max_quarantine_share,
        description="Share of a partition's rows quarantine may take before the graph stops.",
    )
    max_dimension_loss_share: float = Field(
        default=_QUALITY.max_dimension_loss_share,
        description="Share of a dimension's keys a new reference file may remove; more is "
        "refused and the last good dimension stays.",
    )
    feature_lead_minutes: int = Field(
        default=LEAD_MINUTES,
        description="A flight is predicted this long before its scheduled departure.",
    )
    search_budget: int = Field(
        default=0,
        description="Search trials per training; 0: each spec's own. A run's `budget` comes first.",
    )
    rolling_days: str = Field(
        default="",
        description="Retraining windows as 'train,valid,test' days; empty: each spec's own.",
    )
    retrain_drift_days: int = Field(
        default=_RETRAIN.drift_days,
        description="Drifted scored days in a row that ask for a retraining.",
    )
    retrain_performance_days: int = Field(
        default=_RETRAIN.performance_days,
        description="Matured days pooled for the realized metric.",
    )
    retrain_min_performance_days: int = Field(
        default=_RETRAIN.min_performance_days,
        description="Fewer matured days than this: no verdict on performance.",
    )
    retrain_cooldown_days: int = Field(
        default=_RETRAIN.cooldown_days,
        description="Scored days between two retrainings of a model.",
    )
    retrain_retry_days: int = Field(
        default=_RETRAIN.retry_days,
        description="Scored days before a model whose challenger the gates rejected is tried "
        "again (instead of the cool-down).",
    )
    retrain_estimate_days: int = Field(
        default=_RETRAIN.estimate_days,
        description="Scored days pooled for the label-free estimate of performance; 0: off.",
    )
    retrain_max_age_days: int = Field(
        default=_RETRAIN.max_age_days,
        description="Retrain when the serving model's last labelled day is this old, whatever "
        "the evidence; 0: no limit.",
    )
    retrain_min_drift_rows: int = Field(
        default=_RETRAIN.min_drift_rows,
        description="Rows a drift window needs before its verdict can ask for a retraining.",
    )
    retrain_change_rolling_days: str = Field(
        default=_RETRAIN.change_rolling_days,
        description="Windows ('train,valid,test' days) of a retraining after a detected change "
        "(drift, performance or its estimate past the floor): fresher data than the spec's; "
        "empty: the spec's.",
    )
    drift_window_days: int = Field(
        default=_DRIFT.window_days,
        description="Scored days a drift judgement looks back over.",
    )
    mlflow_tracking_uri: str = Field(
        default="",
        description="MLflow tracking URI (sqlite:///..., http://...): each training logged, each "
        "model registered, `champion` following promotions (pip install .[mlflow]); empty: off.",
    )
    alert_webhook_url: str = Field(
        default="",
        description="Alerts are POSTed here as JSON (docs/integrations.md); empty: no webhook.",
    )
    alert_webhook_format: str = Field(
        default=_ALERTS.webhook_format,
        description="'json' (the alert as is) or 'slack' (an incoming-webhook message).",
    )
    alert_smtp_host: str = Field(
        default="",
        description="Alerts are e-mailed through this SMTP server; empty: no e-mail.",
    )
    alert_smtp_port: int = Field(default=_ALERTS.smtp_port, description="The SMTP port.")
    alert_smtp_from: str = Field(default=_ALERTS.smtp_from, description="The alerts' sender.")
    alert_smtp_to: str = Field(default="", description="Comma-separated alert recipients.")
    alert_smtp_starttls: bool = Field(
        default=_ALERTS.smtp_starttls, description="Upgrade the SMTP connection with STARTTLS.",
    )
    alert_smtp_user: str = Field(default="", description="SMTP login; empty: none.")
    alert_smtp_password: str = Field(default="", description="SMTP password (set it from the "
                                     "environment: the UI then shows the variable's name).")
    automation: bool = Field(
        default=False,
        description="Sensors and schedules start running (else stopped until turned on in the UI).",
    )
    ev_priority: str = Field(
        default="",
        description="EV's business priority per model, 'model=2,other=0.5'; others weigh 1.",
    )
    ev_reference_rows_per_s: float = Field(
        default=_KPI.reference_rows_per_s,
        description="Scoring speed that counts as scalability 1 in EV.",
    )
    dask_cluster: str = Field(
        default="",
        description="A Dask scheduler (host:port) or 'local:N' (N local worker processes) for "
        "search, training and scoring (the `.[dask]` extra); empty: all in the run's process.",
    )
    dask_training_rows: str = Field(
        default="",
        description="Training rows from which a model trains with lightgbm.dask on the "
        "cluster, 'model=rows,...'; empty: each model's own (lib/models/dask_steps.py).",
    )

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Defaults, overridden by the `UNIFIED_ASSETS_*` variables that are set, then by
        `overrides`. Text and whole-number fields stay `dg.EnvVar`s (resolved when a run
        starts, named on the UI's resource page); numbers with a fraction and switches, which
        Dagster's config cannot take from the environment, are read here."""
        values = {}
        for name, field in cls.model_fields.items():
            variable = ENV_PREFIX + name.upper()
            raw = os.environ.get(variable, "").strip()
            if not raw or name in overrides:
                continue
            if field.annotation in ("str", str):
                values[name] = dg.EnvVar(variable)
            elif field.annotation in ("int", int):
                if not raw.lstrip("-").isdigit():
                    raise ValueError(f"{variable}={raw!r} is not a whole number")
                values[name] = dg.EnvVar.int(variable)
            else:
                values[name] = raw
        try:
            settings = cls(**(values | overrides))
        except ValidationError as exc:
            wrong = ", ".join(f"{ENV_PREFIX}{e['loc'][0]}".upper() + f"={e['input']!r}"
                              for e in exc.errors())
            raise ValueError(f"settings from the environment are not valid: {wrong}") from exc
        try:  # the alert channels are checked now, not at the first alert a step raises
            settings.alert_channels()
        except ValueError as exc:
            raise ValueError(f"settings from the environment are not valid: {exc}") from exc
        return settings

    def value(self, name: str):
        """A field's value, also outside a run (where an `EnvVar` is not resolved yet)."""
        raw = getattr(self, name)
        resolve = getattr(raw, "get_value", None)  # an EnvVar, or the EnvVar.int of a number
        return resolve() if resolve else raw

    # -- the home folder's layout --------------------------------------------------------
    @property
    def home_path(self) -> Path:
        home = self.value("home")
        return Path(home).expanduser().resolve() if home else config.default_home()

    @property
    def warehouse_path(self) -> Path:
        return config.warehouse_path(self.home_path)

    # -- what lib/ receives --------------------------------------------------------------
    def quality(self) -> QualitySettings:
        return QualitySettings(self.dq_alpha, self.dq_beta, self.dq_gamma,
                               self.max_quarantine_share, self.max_dimension_loss_share)

    def lead_minutes(self) -> int:
        lead = int(self.value("feature_lead_minutes"))
        if lead < 0:
            raise ValueError(f"{ENV_PREFIX}FEATURE_LEAD_MINUTES must be >= 0 minutes, not {lead}")
        return lead

    def budget(self, spec: ModelSpec, run_budget: int = 0) -> int:
        """Search trials: the run's budget, else the settings', else the spec's."""
        from unified_assets.lib.models import training  # LightGBM: only where a run trains

        return training.search_budget(spec, run_budget or int(self.value("search_budget")))

    def rolling(self, run_rolling: str = "") -> Rolling | None:
        """Retraining windows: the run's, else the settings', else None (the spec's)."""
        return Rolling.parse(run_rolling) or Rolling.parse(self.value("rolling_days"))

    def retrain_policy(self) -> RetrainPolicy:
        return RetrainPolicy(
            drift_days=int(self.value("retrain_drift_days")),
            performance_days=int(self.value("retrain_performance_days")),
            min_performance_days=int(self.value("retrain_min_performance_days")),
            cooldown_days=int(self.value("retrain_cooldown_days")),
            retry_days=int(self.value("retrain_retry_days")),
            estimate_days=int(self.value("retrain_estimate_days")),
            max_age_days=int(self.value("retrain_max_age_days")),
            min_drift_rows=int(self.value("retrain_min_drift_rows")),
            change_rolling_days=str(self.value("retrain_change_rolling_days")),
        )

    def drift_policy(self) -> DriftPolicy:
        return DriftPolicy(window_days=int(self.value("drift_window_days")))

    def tracking(self) -> Tracking:
        # MLflow reads its HTTP behaviour from its own environment variables only: unless they
        # are set, a tracking server that is down answers at once (no retries, a 10 s timeout)
        # instead of after MLflow's default 7 retries with backoff.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        return Tracking(str(self.value("mlflow_tracking_uri")))

    def alert_channels(self) -> alerts.Channels:
        text = {name: str(self.value(f"alert_{name}")) for name in (
            "webhook_url", "webhook_format", "smtp_host", "smtp_from", "smtp_to", "smtp_user",
            "smtp_password")}
        return alerts.Channels(**text, smtp_port=int(self.value("alert_smtp_port")),
                               smtp_starttls=bool(self.alert_smtp_starttls))

    def kpi_settings(self) -> KpiSettings:
        return KpiSettings.parse(self.value("ev_priority"), self.ev_reference_rows_per_s)
