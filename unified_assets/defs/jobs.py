"""The jobs of the code location, the asset selections they run, and the default status of every
sensor and schedule: one place to read what runs together, and what starts on its own.

A layer folder names another layer's assets only through the keys built here.
"""

import dagster as dg

from unified_assets.defs.settings import Settings
from unified_assets.lib.models.specs import SPECS, ModelSpec
from unified_assets.lib.sources import SOURCES

# Run tags a retraining carries: which model, why, and the evidence the sensor acted on.
MODEL_TAG = "unified_assets/model"
KIND_TAG = "unified_assets/kind"
AS_OF_TAG = "unified_assets/as_of"
REASON_TAG = "unified_assets/reason"
EVIDENCE_TAG = "unified_assets/evidence"


def key(layer: str, spec: ModelSpec, suffix: str) -> dg.AssetKey:
    """A model's asset in a layer: `<layer>/<model>_<suffix>`."""
    return dg.AssetKey([layer, f"{spec.name}_{suffix}"])


def handoff_ins(spec: ModelSpec, *steps: str) -> dict[str, dg.AssetIn]:
    """The inputs of a model step: the hand-offs of the model's earlier steps, by name."""
    return {step: dg.AssetIn(key("models", spec, step)) for step in steps}


def keys(*names: str) -> list[dg.AssetKey]:
    return [dg.AssetKey.from_user_string(n) for n in names]


# -- status: sensors and schedules start stopped unless the settings say otherwise ----------
def automation_on() -> bool:
    """Sensors and schedules start stopped: turn them on in the UI, or set
    UNIFIED_ASSETS_AUTOMATION=on (the settings' `automation`) before starting the daemon."""
    return Settings.from_env().automation


def sensor_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if automation_on() else dg.DefaultSensorStatus.STOPPED


def schedule_status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if automation_on() else dg.DefaultScheduleStatus.STOPPED


# -- selections -----------------------------------------------------------------------------
# A day's path: each daily source's raw and curated table, then the feature tables. The
# reference path: each reference source's raw table and dimension, the calendar, the registry.
DAILY_ASSETS = [
    *(dg.AssetKey(["raw", s.name]) for s in SOURCES.values() if s.daily),
    *(dg.AssetKey(s.table.split(".")) for s in SOURCES.values() if s.daily),
    *keys("features/flight_features", "features/origin_daily"),
]
REFERENCE_ASSETS = [
    *(dg.AssetKey(["raw", s.name]) for s in SOURCES.values() if not s.daily),
    *(dg.AssetKey(s.table.split(".")) for s in SOURCES.values() if not s.daily),
    *keys("warehouse/dim_date", "features/feature_registry"),
]
ONLINE_STORE = dg.AssetKey(["serving", "online_store"])
KPI_SCORECARD = dg.AssetKey(["monitoring", "kpi_scorecard"])
RETRAINING_STEPS = (("models", "training_set"), ("models", "model"), ("models", "evaluation"),
                    ("deployment", "manifest"))


def scoring_keys(spec: ModelSpec) -> list[dg.AssetKey]:
    """A model's daily predictions and their monitoring: what scores a landed day."""
    return [key("serving", spec, "predictions"), key("monitoring", spec, "monitor")]


SCORING_ASSETS = [k for spec in SPECS.values() for k in scoring_keys(spec)]

# -- jobs -----------------------------------------------------------------------------------
ingest_daily = dg.define_asset_job(
    "ingest_daily", selection=dg.AssetSelection.assets(*DAILY_ASSETS, *SCORING_ASSETS),
    description="One landing day through raw, warehouse and features, then scored by every "
    "promoted model and monitored: the whole daily path in one run.",
)
ingest_reference = dg.define_asset_job(
    "ingest_reference", selection=dg.AssetSelection.assets(*REFERENCE_ASSETS),
    description="The reference tables, their dimensions, the calendar and the feature registry.",
)
nightly_scoring = dg.define_asset_job(
    "nightly_scoring", selection=dg.AssetSelection.assets(*SCORING_ASSETS),
    description="A day's predictions from each promoted model, and their monitoring.",
)
online_refresh = dg.define_asset_job(
    "online_refresh", selection=dg.AssetSelection.assets(ONLINE_STORE),
    description="Export the online store from the warehouse and check that it reproduces "
    "yesterday's batch predictions.",
)
kpi_scorecard = dg.define_asset_job("kpi_scorecard", selection=[KPI_SCORECARD])


def retrain_job(spec: ModelSpec):
    """A model's retraining: training set, model, evaluation and the gated manifest."""
    return dg.define_asset_job(
        f"retrain_{spec.name}",
        selection=dg.AssetSelection.assets(*(key(layer, spec, s) for layer, s in RETRAINING_STEPS)),
        tags={MODEL_TAG: spec.name, KIND_TAG: "retrain"},
        description=f"Retrain {spec.name} on trailing windows and put it through the gates.",
    )
