"""raw checks beyond the schema: what the landing files themselves looked like."""

import dagster as dg

from unified_assets.defs.checks import asset_key
from unified_assets.lib.raw.ingest import IngestStats


def landing_files_spec(table: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "landing_files",
        asset=asset_key(table),
        blocking=False,
        description="Files that arrived empty, with bytes that were not UTF-8, with columns "
        "outside the contract (kept in `_extra`), or whose rows landed differ from their lines.",
    )


def landing_files(stats: IngestStats) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name="landing_files",
        passed=not (stats.empty_files or stats.invalid_utf8_files or stats.extra_columns)
        and stats.rows == stats.data_lines,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "files": stats.files,
            "rows": stats.rows,
            "source_data_lines": stats.data_lines,
            "empty_files": dg.MetadataValue.json(list(stats.empty_files)),
            "invalid_utf8_files": dg.MetadataValue.json(list(stats.invalid_utf8_files)),
            "extra_columns": dg.MetadataValue.json(list(stats.extra_columns)),
        },
    )
