"""The check factory: a table's pandera schema and DQ spec become its asset checks.

Every table gets `schema` (blocking: types, keys, ranges, nullability) and `quality` (warns:
the data's own flaws). The asset validates what it wrote inside its write transaction and
reports the results through `check_specs`, so a failing blocking check skips everything
downstream in the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import dagster as dg
import pandas as pd

from unified_assets.lib.core.config import QualitySettings
from unified_assets.lib.core.database import Transaction
from unified_assets.lib.quality import validation

VALIDATION_SAMPLE_ROWS = 20_000
"""Rows pandera validates per run: all of them up to this, a repeatable sample beyond."""


def asset_key(table: str) -> dg.AssetKey:
    """`layer.table` is also the asset key and the asset group (the layer)."""
    return dg.AssetKey(table.split("."))


def table_check_specs(table: str, *extra: dg.AssetCheckSpec) -> list[dg.AssetCheckSpec]:
    key = asset_key(table)
    return [
        dg.AssetCheckSpec(
            "schema", asset=key, blocking=True,
            description=f"Every row matches the {table} pandera schema (types, keys, ranges).",
        ),
        dg.AssetCheckSpec(
            "quality", asset=key, blocking=False,
            description="The data's own flaws: measured and reported, never silently dropped.",
        ),
        *extra,
    ]


def window(context: dg.AssetExecutionContext) -> tuple[date | None, date | None]:
    """The run's days [start, end), whether it covers one partition or a range; (None, None)
    for an unpartitioned asset, even inside a range run."""
    if context.assets_def.partitions_def is None:
        return None, None
    tw = context.partition_time_window
    return tw.start.date(), tw.end.date()


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _rows(table: str, start: date | None, end: date | None) -> tuple[str, dict]:
    column = validation.SPECS[table].partition_column
    if column is None or start is None:
        return "TRUE", {}
    return f"{column} >= $start AND {column} < $end", {"start": start, "end": end}


def _sample(conn, table, start, end) -> tuple[pd.DataFrame, int]:
    where, params = _rows(table, start, end)
    total = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]
    sample = (
        ""
        if total <= VALIDATION_SAMPLE_ROWS
        else f" USING SAMPLE reservoir({VALIDATION_SAMPLE_ROWS} ROWS) REPEATABLE (13)"
    )
    frame = conn.execute(f"SELECT * FROM {table} WHERE {where}{sample}", params).df()
    return frame, total


def _duplicate_keys(conn, table, key: Sequence[str], start, end) -> int:
    if not key:
        return 0
    where, params = _rows(table, start, end)
    cols = ", ".join(key)
    return conn.execute(
        f"SELECT count(*) FROM (SELECT {cols} FROM {table} WHERE {where} "
        f"GROUP BY ALL HAVING count(*) > 1)",
        params,
    ).fetchone()[0]


def _md(records: list[dict]) -> dg.MetadataValue:
    if not records:
        return dg.MetadataValue.md("none")
    return dg.MetadataValue.md(pd.DataFrame(records).to_markdown(index=False))


def publish(
    context: dg.AssetExecutionContext,
    tx: Transaction,
    table: str,
    start: date | None = None,
    end: date | None = None,
    *,
    key: Sequence[str] = (),
    metadata: dict | None = None,
    extra_results: Sequence[dg.AssetCheckResult] = (),
    settings: QualitySettings,
) -> dg.MaterializeResult:
    """Validate and score what this run wrote, inside its transaction, and report it.

    When a blocking check fails the write is rolled back: the tables keep their last good
    state, the failed check (with its evidence) skips everything downstream in this run.
    """
    conn = tx.conn
    frame, total = _sample(conn, table, start, end)
    outcome = validation.validate(table, frame)
    duplicates = _duplicate_keys(conn, table, key, start, end)
    scores = validation.measure(conn, table, start, end, settings)
    validation.record(conn, scores, table, start, end, utc_now(), settings)
    score = validation.overall(scores)
    blocking = validation.Validation.summary(outcome.blocking)
    if duplicates:
        blocking[f"{'+'.join(key)}: duplicate keys"] = int(duplicates)
    check_meta = {"rows": total, "rows_validated": len(frame)}
    results = [
        dg.AssetCheckResult(
            check_name="schema",
            passed=not blocking,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=check_meta | {
                "failures": sum(blocking.values()),
                "failures_by_check": dg.MetadataValue.json(blocking),
                "failure_sample": _md(validation.Validation.sample(outcome.blocking)),
            },
        ),
        dg.AssetCheckResult(
            check_name="quality",
            passed=outcome.warnings.empty,
            severity=dg.AssetCheckSeverity.WARN,
            metadata=check_meta | {
                "failures": len(outcome.warnings),
                "failures_by_check": dg.MetadataValue.json(
                    validation.Validation.summary(outcome.warnings)
                ),
                "failure_sample": _md(validation.Validation.sample(outcome.warnings)),
                "dq": score["dq"],
            },
        ),
        *extra_results,
    ]
    if not results[0].passed:
        context.log.error(f"{table}: blocking schema failures {blocking}")
    blocking_checks = {
        spec.name for spec in context.assets_def.check_specs
        if spec.blocking and spec.asset_key == asset_key(table)
    }
    failed = [r.check_name for r in results if not r.passed and r.check_name in blocking_checks]
    if failed:
        tx.rollback()
        context.log.error(f"{table}: blocking check(s) {failed} failed; write rolled back")
    meta = {
        "dagster/row_count": total,
        "dq": score["dq"],
        "dq_completeness": score["completeness"],
        "dq_accuracy": score["accuracy"],
        "dq_validity": score["validity"],
        "window": f"{start} .. {end}" if start else "all",
        "rolled_back": bool(failed),
    } | (metadata or {})
    if 1 < len(scores) <= 62:
        meta["dq_by_partition"] = dg.MetadataValue.md(
            scores.drop(columns=["table_name"]).round(4).to_markdown(index=False)
        )
    return dg.MaterializeResult(
        metadata={k: v for k, v in meta.items() if v is not None}, check_results=results
    )
