"""Online serving in the graph: the online store the service reads, and the parity check that
re-scores a sample of the latest batch day through the service's own code path (the service's
logged traffic is monitored in defs/monitoring/online.py)."""

from datetime import timedelta

import dagster as dg
import numpy as np
import pandas as pd

from unified_assets.defs.jobs import ONLINE_STORE, key, online_refresh, schedule_status
from unified_assets.defs.partitions import single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib.core.database import table_exists
from unified_assets.lib.models.specs import SPECS, ModelSpec
from unified_assets.lib.serving import online_export, online_store
from unified_assets.online.service import (
    FORECAST_HORIZON_DAYS,
    RequestError,
    Service,
    ServiceConfig,
)

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
)
def online_store_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """What the prediction service computes features from: every flight's schedule and outcome
    times, delay rates per carrier, origin and route for every day, weather, planes, calendar
    and the forecaster's rows, exported with the feature SQL to online/ (the service follows)."""
    with warehouse.connect(read_only=True) as conn:
        pointer = online_export.export(conn, warehouse.home_path)
    context.log.info(f"online store {pointer['folder']}: {pointer['rows']}")
    return dg.MaterializeResult(metadata={
        "folder": pointer["folder"], "first_day": pointer["first_day"],
        "last_day": pointer["last_day"], **{f"rows_{k}": v for k, v in pointer["rows"].items()},
    })


def _batch_sample(conn, spec: ModelSpec) -> pd.DataFrame:
    """A repeatable sample of the latest scored day of the spec's batch predictions, with the
    schedule fields a client would send."""
    table = f"serving.{spec.name}_predictions"
    if spec.task == "forecast":
        sql = (f"SELECT origin, feature_date, prediction, model_version FROM {table} "
               f"WHERE feature_date = (SELECT max(feature_date) FROM {table}) "
               f"AND prediction IS NOT NULL ORDER BY origin")
    else:
        sql = (f"SELECT p.carrier, p.flight, p.origin, f.dest, p.sched_dep_ts, f.tailnum, "
               f"p.flight_date, p.prediction, p.model_version FROM {table} p "
               f"JOIN features.flight_features f USING (flight_date, carrier, flight, origin, "
               f"sched_dep_ts) WHERE p.flight_date = (SELECT max(flight_date) FROM {table}) "
               f"ORDER BY hash(p.carrier, p.flight, p.sched_dep_ts) "
               f"LIMIT {PARITY_SAMPLE_ROWS}")
    return conn.execute(sql).df()


def parity(service: Service, spec: ModelSpec, sample: pd.DataFrame) -> dict:
    """Re-score the batch rows through the service; compare with their batch predictions."""
    served = service.model(spec.name)
    same = sample[sample["model_version"] == served.version]
    if spec.task == "forecast":
        forecasts = [(r.origin, (pd.Timestamp(r.feature_date) + timedelta(
            days=FORECAST_HORIZON_DAYS)).date()) for r in same.itertuples()]
        result = service.predict(spec.name, forecasts=forecasts) if forecasts else None
    else:
        flights = [online_store.FlightRequest(
            r.carrier, int(r.flight), r.origin, r.dest,
            pd.Timestamp(r.sched_dep_ts).to_pydatetime(),
            None if pd.isna(r.tailnum) else r.tailnum) for r in same.itertuples()]
        result = service.predict(spec.name, flights=flights) if flights else None
    online = np.array([p["prediction"] for p in result["predictions"]]) if result else np.array([])
    gap = float(np.max(np.abs(online - same["prediction"].to_numpy(float)))) if len(same) else None
    return {"rows": len(same), "other_version_rows": len(sample) - len(same),
            "version": served.version, "max_abs_gap": gap}


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
            for spec in SPECS.values()}
    service = Service(ServiceConfig(home, warehouse.settings.lead_minutes(),
                                    log_requests=False))
    service.refresh()
    if service.store is None:
        return dg.AssetCheckResult(passed=False, metadata={"reason": service.store_error})
    verdicts = {spec.name: model_parity(service, spec, samples[spec.name])
                for spec in SPECS.values()}
    gaps = [v[1]["max_abs_gap"] for v in verdicts.values() if v[1].get("max_abs_gap") is not None]
    return dg.AssetCheckResult(
        passed=all(ok for ok, _ in verdicts.values()),
        metadata={"max_abs_gap": max(gaps) if gaps else None,
                  "models": dg.MetadataValue.json({n: {"passed": ok} | found
                                                   for n, (ok, found) in verdicts.items()})},
    )


@dg.schedule(
    name="online_refresh",
    job=online_refresh,
    cron_schedule="30 4 * * *",
    default_status=schedule_status(),
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
    assets=[online_store_asset], asset_checks=[online_parity], schedules=[online_refresh_schedule],
)
