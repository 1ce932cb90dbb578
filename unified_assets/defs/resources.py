"""The platform's resources, declared once: its settings and its warehouse.

`Settings` is the one place configuration lives: the home folder's layout and every threshold,
weight and switch, each defaulting to its `UNIFIED_ASSETS_*` environment variable. The UI's
resource page shows the values a code location runs with; `lib/` receives them as arguments.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field, ValidationError

from unified_assets.lib.core import config, database
from unified_assets.lib.core.config import QualitySettings
from unified_assets.lib.models.specs import ModelSpec, Rolling
from unified_assets.lib.models.training import search_budget
from unified_assets.lib.monitoring.drift import DriftPolicy
from unified_assets.lib.monitoring.kpis import KpiSettings
from unified_assets.lib.monitoring.retraining import RetrainPolicy

ENV_PREFIX = "UNIFIED_ASSETS_"


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
        default=120.0,
        description="Seconds a run waits for the warehouse file while another process holds it.",
    )
    dq_alpha: float = Field(
        default=1.0,
        description="DQ weight of completeness.",
    )
    dq_beta: float = Field(
        default=1.0,
        description="DQ weight of accuracy.",
    )
    dq_gamma: float = Field(
        default=1.0,
        description="DQ weight of validity.",
    )
    max_quarantine_share: float = Field(
        default=0.05,
        description="Share of a partition's rows quarantine may take before the graph stops.",
    )
    feature_lead_minutes: int = Field(
        default=120,
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
        default=3,
        description="Drifted scored days in a row that ask for a retraining.",
    )
    retrain_performance_days: int = Field(
        default=7,
        description="Matured days pooled for the realized metric.",
    )
    retrain_min_performance_days: int = Field(
        default=4,
        description="Fewer matured days than this: no verdict on performance.",
    )
    retrain_cooldown_days: int = Field(
        default=21,
        description="Scored days between two retrainings of a model.",
    )
    retrain_retry_days: int = Field(
        default=7,
        description="Scored days before a model whose challenger the gates rejected is tried "
        "again (instead of the cool-down).",
    )
    retrain_estimate_days: int = Field(
        default=7,
        description="Scored days pooled for the label-free estimate of performance; 0: off.",
    )
    retrain_max_age_days: int = Field(
        default=30,
        description="Retrain when the serving model's last labelled day is this old, whatever "
        "the evidence; 0: no limit.",
    )
    retrain_min_drift_rows: int = Field(
        default=1000,
        description="Rows a drift window needs before its verdict can ask for a retraining.",
    )
    drift_window_days: int = Field(
        default=7,
        description="Scored days a drift judgement looks back over.",
    )
    automation: bool = Field(
        default=False,
        description="Sensors and schedules start running (else stopped until turned on in the UI).",
    )
    ev_priority: str = Field(
        default="",
        description="EV's business priority per model, 'model=2,other=0.5'; others weigh 1.",
    )
    ev_reference_rows_per_s: float = Field(
        default=10_000.0,
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
        "cluster, 'model=rows,...'; empty: each model's own (lib/core/cluster.py).",
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
            return cls(**(values | overrides))
        except ValidationError as exc:
            wrong = ", ".join(f"{ENV_PREFIX}{e['loc'][0]}".upper() + f"={e['input']!r}"
                              for e in exc.errors())  # fmt: skip
            raise ValueError(f"settings from the environment are not valid: {wrong}") from exc

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
                               self.max_quarantine_share)  # fmt: skip

    def lead_minutes(self) -> int:
        lead = int(self.value("feature_lead_minutes"))
        if lead < 0:
            raise ValueError(f"{ENV_PREFIX}FEATURE_LEAD_MINUTES must be >= 0 minutes, not {lead}")
        return lead

    def budget(self, spec: ModelSpec, run_budget: int = 0) -> int:
        """Search trials: the run's budget, else the settings', else the spec's."""
        return search_budget(spec, run_budget or int(self.value("search_budget")))

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
        )

    def drift_policy(self) -> DriftPolicy:
        return DriftPolicy(window_days=int(self.value("drift_window_days")))

    def kpi_settings(self) -> KpiSettings:
        return KpiSettings.parse(self.value("ev_priority"), self.ev_reference_rows_per_s)


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse in the home folder: every read and write of the platform goes here."""

    settings: Settings

    @property
    def home_path(self) -> Path:
        return self.settings.home_path

    @property
    def database(self) -> Path:
        return self.settings.warehouse_path

    @contextmanager
    def connect(
        self, read_only: bool = False, timeout_s: float | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse, waiting (bounded) while another process writes.
        Sensors pass a short `timeout_s`: a busy warehouse means "try again next tick"."""
        conn = database.connect(
            self.database, read_only=read_only,
            timeout_s=timeout_s or self.settings.lock_timeout_s,
        )  # fmt: skip
        try:
            if not read_only:
                database.ensure_schemas(conn)
            yield conn
        finally:
            conn.close()


def build_resources(
    settings: Settings,
) -> dict[str, dg.ConfigurableResource | dg.ConfigurableIOManager]:
    """The code location's resources over one `Settings`, and the IO manager that carries a
    model's hand-offs from step to step (keyed, not the default `io_manager`)."""
    # Imported here: its module declares the IO manager over this module's `Settings`.
    from unified_assets.defs.models.io_manager import HANDOFF_IO_MANAGER, HandoffIOManager

    return {"settings": settings, "warehouse": WarehouseResource(settings=settings),
            HANDOFF_IO_MANAGER: HandoffIOManager(settings=settings)}  # fmt: skip
