"""features: point-in-time correct feature tables and the feature registry."""

import dagster as dg
import pandas as pd

from unified_assets.defs.checks import asset_key, utc_now, window
from unified_assets.defs.partitions import daily, single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib.core.database import transaction
from unified_assets.lib.features import catalog, flight_table, origin_daily_table
from unified_assets.lib.features import leakage as leakage_audit
from unified_assets.lib.features.tables import BUILDER_READS


def leakage_spec(table: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "leakage",
        asset=asset_key(table),
        blocking=True,
        description="No feature value could have been unknown at its row's prediction cutoff: "
        "each feature's as-of column against cutoff_utc, and an independent audit of every "
        "value against the actual departure, arrival and weather-hour times "
        "(lib/features/leakage.py).",
    )


def leakage(conn, table: str, start, end) -> dg.AssetCheckResult:
    declared = leakage_audit.leakage_report(conn, table, start, end)
    findings = leakage_audit.audit(conn, table, start, end)
    leaks = {name: n for name, n in declared.items() if n}
    for finding in findings:
        if finding.violations:
            leaks[finding.feature] = max(leaks.get(finding.feature, 0), finding.violations)
    table_md = pd.DataFrame(
        [f.as_dict() | {"as_of_after_cutoff": declared.get(f.feature, 0)} for f in findings]
    ).to_markdown(index=False)
    samples = {f.feature: f.sample for f in findings if f.sample}
    return dg.AssetCheckResult(
        check_name="leakage",
        passed=not leaks,
        metadata={
            "features_checked": len(findings),
            "leaking": dg.MetadataValue.json(leaks),
            "audit": dg.MetadataValue.md(table_md),
            "violation_samples": dg.MetadataValue.json(samples),
        },
    )


def build(context, warehouse: WarehouseResource, table: str, builder) -> dg.MaterializeResult:
    """Rebuild the run's days of a feature table; a leak rolls the write back."""
    start, end = window(context)
    with warehouse.connect() as conn, transaction(conn) as tx:
        rows = builder(conn, start, end)
        check = leakage(conn, table, start, end)
        if not check.passed:
            tx.rollback()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "window": f"{start} .. {end}",
                "rolled_back": not check.passed,
            },
            check_results=[check],
        )


_FEATURES = dict(
    group_name="features",
    partitions_def=daily,
    backfill_policy=single_run,
    kinds={"duckdb"},
    pool="duckdb",
)


def _deps(table: str) -> list[dg.AssetKey]:
    """A feature table's inputs, from its features' declarations (catalog.py) and what its
    builder reads besides."""
    return [asset_key(t) for t in sorted({*catalog.source_tables(table), *BUILDER_READS[table]})]


@dg.asset(
    key=["features", "flight_features"],
    deps=_deps("features.flight_features"),
    check_specs=[leakage_spec("features.flight_features")],
    **_FEATURES,
)
def flight_features(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """One row per flight, as known at its prediction cutoff (scheduled departure minus the
    lead time): schedule, route, plane, weather, recent delay rates, congestion, inbound delay."""
    lead = warehouse.settings.lead_minutes()
    return build(
        context, warehouse, "features.flight_features",
        lambda conn, s, e: flight_table.build_flight_features(conn, s, e, lead),
    )


@dg.asset(
    key=["features", "origin_daily"],
    deps=_deps("features.origin_daily"),
    check_specs=[leakage_spec("features.origin_daily")],
    **_FEATURES,
)
def origin_daily(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """One row per origin and day: departure history and the target day's calendar, to
    forecast departures 7 days ahead."""
    return build(context, warehouse, "features.origin_daily", origin_daily_table.build_origin_daily)


@dg.asset(key=["features", "feature_registry"], group_name="features", kinds={"duckdb"},
          pool="duckdb", backfill_policy=single_run)
def feature_registry(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Every feature the platform generates: name, meaning, type, sources, owner, as-of."""
    frame = pd.DataFrame(
        [
            {
                "name": f.name,
                "description": f.description,
                "dtype": f.dtype,
                "source_tables": ", ".join(f.source_tables),
                "owner": f.owner,
                "table_name": f.table,
                "as_of": f.as_of,
            }
            for f in catalog.REGISTRY.values()
        ]
    )
    with warehouse.connect() as conn, transaction(conn):
        conn.register("_registry", frame)
        conn.execute(
            "CREATE OR REPLACE TABLE features.feature_registry AS "
            "SELECT *, $now AS registered_at FROM _registry",
            {"now": utc_now()},
        )
        conn.unregister("_registry")
    counts = frame.groupby("table_name").size().to_dict()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "features_by_table": dg.MetadataValue.json(counts),
            "registry": dg.MetadataValue.md(
                frame[["name", "dtype", "table_name", "as_of"]].to_markdown(index=False)
            ),
        }
    )
