"""Online serving in the graph: the online store the service reads, the service's logged
traffic brought into the warehouse for monitoring, and the parity check that re-scores a
sample of the latest batch day through the service's own code path."""

from datetime import timedelta
from functools import cache, partial

import dagster as dg
import numpy as np
import pandas as pd

from unified_assets.defs.checks import window
from unified_assets.defs.models.assets import key
from unified_assets.defs.partitions import daily, single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.defs.serving.schedules import automation_status
from unified_assets.lib.core import artifacts
from unified_assets.lib.core.database import table_exists, transaction
from unified_assets.lib.models.specs import SPECS, ModelSpec
from unified_assets.lib.monitoring import drift, online_monitoring
from unified_assets.lib.serving import online_store, request_log
from unified_assets.online.service import (
    FORECAST_HORIZON_DAYS,
    RequestError,
    Service,
    ServiceConfig,
)

ONLINE_STORE = dg.AssetKey(["serving", "online_store"])
PARITY_SAMPLE_ROWS = 300
PARITY_TOLERANCE = 1e-9


@dg.asset(
    key=ONLINE_STORE,
    group_name="serving",
    deps=[["warehouse", t] for t in ("fct_flights", "fct_weather_hourly", "dim_plane",
                                     "dim_date", "dim_airport")]
    + [["features", "origin_daily"]],
    backfill_policy=single_run,
    kinds={"duckdb", "parquet"},
    pool="duckdb",
)  # fmt: skip
def online_store_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """What the prediction service computes features from: every flight's schedule and outcome
    times, delay rates per carrier, origin and route for every day, weather, planes, calendar
    and the forecaster's rows, exported with the feature SQL to online/ (the service follows)."""
    with warehouse.connect(read_only=True) as conn:
        pointer = online_store.export(conn, warehouse.home_path)
    context.log.info(f"online store {pointer['folder']}: {pointer['rows']}")
    return dg.MaterializeResult(metadata={
        "folder": pointer["folder"], "first_day": pointer["first_day"],
        "last_day": pointer["last_day"], **{f"rows_{k}": v for k, v in pointer["rows"].items()},
    })  # fmt: skip


@dg.asset(
    key=["monitoring", "online_predictions"],
    group_name="monitoring",
    partitions_def=daily,
    backfill_policy=single_run,
    deps=[["warehouse", "fct_flights"], ["features", "origin_daily"]]
    + [key("serving", s, "predictions") for s in SPECS.values()],
    kinds={"duckdb"},
    pool="duckdb",
)  # fmt: skip
def online_predictions(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """The online service's predictions of a day, read from its request log into
    monitoring.online_predictions, and per model and version in monitoring.online_daily: rows,
    latency, unseen categories, drift of the trailing week's online rows against the version's
    training reference, realized metric once outcomes are known, and the largest gap to the
    batch prediction of the same flight by the same version."""
    start, end = window(context)
    home = warehouse.home_path
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    frame = pd.concat([request_log.read_day(home, d).assign(day=d) for d in days],
                      ignore_index=True)  # fmt: skip
    with warehouse.connect() as conn, transaction(conn):
        rows, summary = online_monitoring.record(
            conn, frame, start, end,
            cache(partial(artifacts.load_reference_with_sample, home, key=drift.SAMPLE)),
            warehouse.settings.drift_policy(),
        )  # fmt: skip
    context.log.info(f"{rows} online predictions over {len(days)} days")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "summary": dg.MetadataValue.md(summary.to_markdown(index=False) if len(summary)
                                       else "no online traffic"),
    })  # fmt: skip


def _batch_sample(conn, spec: ModelSpec) -> pd.DataFrame:
    """A repeatable sample of the latest scored day of the spec's batch predictions, with the
    schedule fields a client would send."""
    table = f"serving.{spec.name}_predictions"
    if spec.task == "forecast":
        sql = (f"SELECT origin, feature_date, prediction, model_version FROM {table} "
               f"WHERE feature_date = (SELECT max(feature_date) FROM {table}) "
               f"AND prediction IS NOT NULL ORDER BY origin")  # fmt: skip
    else:
        sql = (f"SELECT p.carrier, p.flight, p.origin, f.dest, p.sched_dep_ts, f.tailnum, "
               f"p.flight_date, p.prediction, p.model_version FROM {table} p "
               f"JOIN features.flight_features f USING (flight_date, carrier, flight, origin, "
               f"sched_dep_ts) WHERE p.flight_date = (SELECT max(flight_date) FROM {table}) "
               f"ORDER BY hash(p.carrier, p.flight, p.sched_dep_ts) "
               f"LIMIT {PARITY_SAMPLE_ROWS}")  # fmt: skip
    return conn.execute(sql).df()


def parity(service: Service, spec: ModelSpec, sample: pd.DataFrame) -> dict:
    """Re-score the batch rows through the service; compare with their batch predictions."""
    served = service.model(spec.name)
    same = sample[sample["model_version"] == served.version]
    if spec.task == "forecast":
        forecasts = [(r.origin, (pd.Timestamp(r.feature_date) + timedelta(
            days=FORECAST_HORIZON_DAYS)).date()) for r in same.itertuples()]  # fmt: skip
        result = service.predict(spec.name, forecasts=forecasts) if forecasts else None
    else:
        flights = [online_store.FlightRequest(
            r.carrier, int(r.flight), r.origin, r.dest,
            pd.Timestamp(r.sched_dep_ts).to_pydatetime(),
            None if pd.isna(r.tailnum) else r.tailnum) for r in same.itertuples()]  # fmt: skip
        result = service.predict(spec.name, flights=flights) if flights else None
    online = np.array([p["prediction"] for p in result["predictions"]]) if result else np.array([])
    gap = float(np.max(np.abs(online - same["prediction"].to_numpy(float)))) if len(same) else None
    return {"rows": len(same), "other_version_rows": len(sample) - len(same),
            "version": served.version, "max_abs_gap": gap}  # fmt: skip


def model_parity(service: Service, spec: ModelSpec, sample: pd.DataFrame) -> tuple[bool, dict]:
    """One model's verdict: passed, and what was found (a model not served, a store that
    does not cover the batch day, a gap)."""
    if service.registry.get(spec.name) is None:
        refused = service.registry.states[spec.name].refused
        return refused is None, {"note": refused or "no promoted model"}
    if sample.empty:
        return True, {"note": "no batch predictions yet"}
    try:
        found = parity(service, spec, sample)
    except RequestError as exc:  # e.g. the store was exported before the batch day
        return False, {"note": str(exc)}
    if found["rows"] == 0:  # the day was scored by another version: nothing to compare
        return True, found
    return found["max_abs_gap"] <= PARITY_TOLERANCE, found


@dg.asset_check(
    asset=ONLINE_STORE,
    name="online_parity",
    additional_deps=[key("serving", s, "predictions") for s in SPECS.values()],
    blocking=False,
    pool="duckdb",
    description="For every model, a sample of its latest batch day re-scored through the online "
    "service's code path (this online store, the served model) equals the batch predictions of "
    f"the same version within {PARITY_TOLERANCE:g}.",
)
def online_parity(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    home = warehouse.home_path
    with warehouse.connect(read_only=True) as conn:
        samples = {spec.name: _batch_sample(conn, spec) if table_exists(
            conn, f"serving.{spec.name}_predictions") else pd.DataFrame()
            for spec in SPECS.values()}  # fmt: skip
    service = Service(ServiceConfig(home, warehouse.settings.lead_minutes(),
                                    log_requests=False))  # fmt: skip
    service.refresh()
    if service.store is None:
        return dg.AssetCheckResult(passed=False, metadata={"reason": service.store_error})
    verdicts = {spec.name: model_parity(service, spec, samples[spec.name])
                for spec in SPECS.values()}  # fmt: skip
    gaps = [v[1]["max_abs_gap"] for v in verdicts.values() if v[1].get("max_abs_gap") is not None]
    return dg.AssetCheckResult(
        passed=all(ok for ok, _ in verdicts.values()),
        metadata={"max_abs_gap": max(gaps) if gaps else None,
                  "models": dg.MetadataValue.json({n: {"passed": ok} | found
                                                   for n, (ok, found) in verdicts.items()})},
    )  # fmt: skip


online_refresh = dg.define_asset_job(
    "online_refresh", selection=dg.AssetSelection.assets(ONLINE_STORE),
    description="Export the online store from the warehouse and check that it reproduces "
    "yesterday's batch predictions.",
)  # fmt: skip


@dg.schedule(
    name="online_refresh",
    job=online_refresh,
    cron_schedule="30 4 * * *",
    default_status=automation_status(),
    description="At 04:30, after the nightly scoring: the online store the prediction service "
    "reads, refreshed with yesterday's flights, and its parity with batch.",
)
def online_refresh_schedule(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
    try:
        with warehouse.connect(read_only=True, timeout_s=10) as conn:
            landed = table_exists(conn, "warehouse.fct_flights")
    except RuntimeError as exc:
        return dg.SkipReason(f"warehouse busy: {exc}")
    if not landed:
        return dg.SkipReason("no flights in the warehouse yet: nothing to serve")
    return dg.RunRequest(run_key=f"online_refresh:{context.scheduled_execution_time:%Y-%m-%d}")


defs = dg.Definitions(
    assets=[online_store_asset, online_predictions], asset_checks=[online_parity],
    jobs=[online_refresh], schedules=[online_refresh_schedule],
)
