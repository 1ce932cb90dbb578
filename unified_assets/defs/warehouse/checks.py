"""warehouse checks beyond the schema: conservation, quarantine share, conflicting duplicates,
referential integrity, weather coverage. Each is evaluated in SQL on every row of the run's
partitions."""

from __future__ import annotations

from datetime import date

import dagster as dg
import duckdb
import pandas as pd

from unified_assets.defs.checks import asset_key
from unified_assets.lib.quality import validation
from unified_assets.lib.warehouse import transforms


def conservation_spec(table: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "conservation", asset=asset_key(table), blocking=True,
        description="Per partition: rows in raw = rows curated + quarantined + duplicates.",
    )


def quarantine_share_spec(table: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "quarantine_share", asset=asset_key(table), blocking=True,
        description="No partition loses more than its allowed share of rows to quarantine "
        "(UNIFIED_ASSETS_MAX_QUARANTINE_SHARE, default 5%): a broken file stops the graph.",
    )


def conservation(conn, table: str, start: date | None, end: date | None) -> dg.AssetCheckResult:
    breaks = transforms.conservation_breaks(conn, table, start, end)
    totals = transforms.audit_totals(conn, table, start, end)
    return dg.AssetCheckResult(
        check_name="conservation",
        passed=not breaks,
        metadata={
            **totals,
            "broken_partitions": dg.MetadataValue.json(
                [{k: str(v) for k, v in b.items()} for b in breaks[:20]]
            ),
        },
    )


def quarantine_share(conn, table: str, start: date | None, end: date | None, limit: float):
    rows = transforms.quarantine_shares(conn, table, start, end)
    over = [
        {"partition": str(day), "rows_in": n, "quarantined": q, "share": round(q / n, 4)}
        for day, n, q in rows
        if n and q / n > limit
    ]
    reasons = transforms.top_reasons(conn, table, start, end)
    return dg.AssetCheckResult(
        check_name="quarantine_share",
        passed=not over,
        metadata={
            "max_share": limit,
            "quarantined": sum(q for _, _, q in rows),
            "partitions_over_limit": dg.MetadataValue.json(over[:50]),
            "top_reasons": dg.MetadataValue.json(reasons),
        },
    )


def dimension_loss_spec(table: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "dimension_loss", asset=asset_key(table), blocking=True,
        description="A new reference file may not empty the dimension, nor remove more than "
        "its allowed share of the keys it had (UNIFIED_ASSETS_MAX_DIMENSION_LOSS_SHARE, default "
        "10%): such a file is refused and the last good dimension stays.",
    )


def dimension_loss(conn, spec: transforms.Curation, limit: float) -> dg.AssetCheckResult:
    loss = transforms.dimension_loss(conn, spec)
    share = loss["keys_removed"] / loss["rows_before"] if loss["rows_before"] else 0.0
    empty = loss["rows_after"] == 0
    return dg.AssetCheckResult(
        check_name="dimension_loss",
        passed=not empty and share <= limit,
        metadata=loss | {
            "share_removed": round(share, 4),
            "max_share": limit,
            "verdict": "empty: refused" if empty else
            f"{share:.1%} of the keys removed: {'refused' if share > limit else 'accepted'}",
        },
    )


def referential_spec() -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "referential_integrity", asset=asset_key("warehouse.fct_flights"), blocking=False,
        description="Carriers, airports and tail numbers that the dimensions do not know.",
    )


def referential_integrity(conn: duckdb.DuckDBPyConnection, start: date, end: date):
    unknown = validation.unknown_references(conn, start, end)
    return dg.AssetCheckResult(
        check_name="referential_integrity",
        passed=all(u["rows"] == 0 for u in unknown.values()),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={f"unknown_{c}_rows": u["rows"] for c, u in unknown.items()}
        | {"unknown": dg.MetadataValue.json(unknown)},
    )


def coverage_spec() -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "hour_coverage", asset=asset_key("warehouse.fct_weather_hourly"), blocking=False,
        description="Every origin has a reading for every hour of every day.",
    )


def hour_coverage(conn: duckdb.DuckDBPyConnection, start: date, end: date):
    missing = validation.missing_weather_hours(conn, start, end)
    return dg.AssetCheckResult(
        check_name="hour_coverage",
        passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "missing_hours": sum(m for _, _, m in missing),
            "worst": dg.MetadataValue.json(
                [{"origin": o, "day": str(d), "missing": m} for o, d, m in missing[:20]]
            ),
        },
    )


def conflicting_duplicates_spec(table: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "conflicting_duplicates", asset=asset_key(table), blocking=False,
        description="Rows that share a natural key but differ in value: one is kept (the most "
        "complete, see lib/warehouse/transforms.py), the others are counted as duplicates and "
        "reported here with their keys and differing values.",
    )


def conflicting_duplicates(conn, table: str, start: date | None, end: date | None):
    """Warns when a key arrived twice with different values: a duplicate that is not a copy."""
    by_partition = transforms.conflicting_duplicates(conn, table, start, end)
    sample = transforms.conflict_sample(conn)
    return dg.AssetCheckResult(
        check_name="conflicting_duplicates",
        passed=not by_partition,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "conflicting_duplicates": sum(n for _, n in by_partition),
            "by_partition": dg.MetadataValue.json({str(d): n for d, n in by_partition}),
            "sample": dg.MetadataValue.md(
                pd.DataFrame(sample).astype(str).to_markdown(index=False) if sample else "none"
            ),
        },
    )


# The checks a source declaration can name in `extra_checks`: spec, then evaluation (over the
# run's partitions, inside its write).
EXTRA = {
    "referential_integrity": (referential_spec, referential_integrity),
    "hour_coverage": (coverage_spec, hour_coverage),
}
