"""Online serving in the graph: the online store the service reads, the service's logged
traffic brought into the warehouse for monitoring, and the parity check that re-scores a
sample of the latest batch day through the service's own code path."""

from datetime import timedelta

import dagster as dg
import numpy as np
import pandas as pd

from unified_assets.defs.checks import window
from unified_assets.defs.models.assets import key
from unified_assets.defs.partitions import daily, single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib import online_log, online_monitoring, online_store
from unified_assets.lib.models import SPECS, ModelSpec
from unified_assets.lib.warehouse import transaction
from unified_assets.online.service import FORECAST_HORIZON_DAYS, Service, ServiceConfig

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
    automation_condition=dg.AutomationCondition.eager(),
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
    latency, unseen categories, realized metric once outcomes are known, and the largest gap
    to the batch prediction of the same flight by the same version."""
    start, end = window(context)
    home = warehouse.home_path
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    frame = pd.concat([online_log.read_day(home, d).assign(day=d) for d in days],
                      ignore_index=True)  # fmt: skip
    with warehouse.connect() as conn, transaction(conn):
        rows, summary = online_monitoring.record(conn, frame, start, end)
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


def parity_check(spec: ModelSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=key("serving", spec, "predictions"),
        name="online_parity",
        additional_deps=[ONLINE_STORE],
        blocking=False,
        pool="duckdb",
        description=f"A sample of the latest batch day of {spec.name}, re-scored through the "
        f"online service's code path (online store, served model), equals the batch "
        f"predictions of the same version within {PARITY_TOLERANCE:g}.",
    )
    def online_parity(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        home = warehouse.home_path
        with warehouse.connect(read_only=True) as conn:
            sample = _batch_sample(conn, spec)
        service = Service(ServiceConfig(home, warehouse.settings.lead_minutes(),
                                        log_requests=False))  # fmt: skip
        service.refresh()
        if service.registry.get(spec.name) is None or service.store is None:
            return dg.AssetCheckResult(passed=False, metadata={
                "reason": service.registry.states[spec.name].refused or service.store_error
                or "no promoted model"})  # fmt: skip
        found = parity(service, spec, sample)
        if found["rows"] == 0:  # the day was scored by another version: nothing to compare
            return dg.AssetCheckResult(passed=found["other_version_rows"] > 0, metadata=found)
        passed = found["max_abs_gap"] <= PARITY_TOLERANCE
        return dg.AssetCheckResult(passed=passed, metadata=found)

    return online_parity


online_parity_checks = [parity_check(spec) for spec in SPECS.values()]
defs = dg.Definitions(
    assets=[online_store_asset, online_predictions], asset_checks=online_parity_checks
)
