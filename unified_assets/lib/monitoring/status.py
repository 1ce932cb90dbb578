"""The platform's status in a few lines: what landed, rows per layer, quarantine, DQ."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb

from unified_assets.lib.core import config, database
from unified_assets.lib.deployment import manifests
from unified_assets.lib.quality import validation
from unified_assets.lib.raw import landing
from unified_assets.lib.warehouse import transforms


def status_report(home: Path) -> str:
    lines = [f"home: {home}"]
    for table in landing.DAILY_TABLES:
        days = landing.landed_days(home, table)
        span = f"{days[0]} .. {days[-1]}" if days else "none"
        lines.append(f"landed {table}: {len(days)} days ({span})")
    db_file = config.warehouse_path(home)
    if not db_file.exists():
        lines.append(f"no warehouse yet at {db_file}")
        return "\n".join(lines)
    conn = database.connect(db_file, read_only=True)
    try:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() ORDER BY 1, 2"
        ).fetchall()
        has_dq = ("monitoring", "data_quality") in tables
        has_q = ("warehouse", "quarantine") in tables
        lines.append(f"{'table':38} {'rows':>9} {'quarantined':>11} {'DQ':>6}")
        for schema, name in tables:
            fqn = f"{schema}.{name}"
            rows = conn.execute(f"SELECT count(*) FROM {fqn}").fetchone()[0]
            quarantined = (
                conn.execute(
                    "SELECT count(*) FROM warehouse.quarantine WHERE table_name = ?", [fqn]
                ).fetchone()[0]
                if has_q
                else 0
            )
            dq = (
                conn.execute(
                    "SELECT sum(dq * rows) / nullif(sum(rows), 0) FROM monitoring.data_quality "
                    "WHERE table_name = ? AND dq IS NOT NULL",
                    [fqn],
                ).fetchone()[0]
                if has_dq
                else None
            )
            shown_dq = f"{dq:6.3f}" if dq is not None else f"{'':>6}"
            lines.append(f"{fqn:38} {rows:>9} {quarantined:>11} {shown_dq}")
        lines += _flaws(conn, tables)
    finally:
        conn.close()
    return "\n".join(lines + _deployments(home))


def _deployments(home: Path) -> list[str]:
    """Per model: the promoted version, its test metric against the baseline, the last decision."""
    root = manifests.deployments_root(home)
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []
    if not names:
        return []
    lines = ["models:"]
    for name in names:
        current = manifests.current(home, name)
        decisions = manifests.history(home, name)
        last = decisions[-1]["status"] if decisions else "none"
        gates = decisions[-1].get("gates", []) if decisions else []
        shown_gates = " ".join(f"{g['name']}={'pass' if g['passed'] else 'FAIL'}" for g in gates)
        reasons = "; ".join(decisions[-1].get("reasons", [])) if decisions else ""
        if current is None:
            lines.append(f"  {name}: nothing promoted (last decision: {last}; {reasons})")
            continue
        test = current.get("metrics", {}).get("test", {})
        if "auc" in test:
            shown = f"test AUC {test['auc']:.3f} (baseline {test['baseline_auc']:.3f})"
        else:
            shown = f"test MAE {test['mae']:.2f} (baseline {test['baseline_mae']:.2f})"
        lines.append(f"  {name}: promoted {current['version'][:12]}, {shown}, "
                     f"AMDR {current['amdr']['value']:.3f}; last decision: {last}")
        if shown_gates:
            lines.append(f"    gates of the last decision: {shown_gates}"
                         + (f" ({reasons})" if reasons else ""))
    return lines


def _flaws(conn: duckdb.DuckDBPyConnection, tables: list[tuple[str, str]]) -> list[str]:
    """What the warnings and the quarantine found in the data, in a few lines."""
    lines = ["what the checks found:"]
    if ("warehouse", "quarantine") in tables:
        for table, reason, n in conn.execute(
            "SELECT table_name, kind, count(*) FROM (SELECT table_name, "
            f"{transforms.REASON_KINDS} AS kind FROM {transforms.QUARANTINE}) "
            "GROUP BY ALL ORDER BY 3 DESC, 2 LIMIT 5"
        ).fetchall():
            lines.append(f"  quarantined in {table}: {n} x {reason}")
    dims = {("warehouse", d) for d in ("dim_carrier", "dim_airport", "dim_plane")}
    if ("warehouse", "fct_flights") in tables and dims <= set(tables):
        first, last = conn.execute(
            "SELECT min(flight_date), max(flight_date) FROM warehouse.fct_flights"
        ).fetchall()[0]
        if first is not None:
            unknown = validation.unknown_references(conn, first, last + timedelta(days=1))
            for column, found in unknown.items():
                if found["rows"]:
                    top = ", ".join(list(found["top"])[:5])
                    more = ", ..." if found["values"] > 5 else ""
                    lines.append(
                        f"  flights whose {column} the dimension does not know: {found['rows']} "
                        f"rows, {found['values']} values ({top}{more})"
                    )
    if ("warehouse", "fct_weather_hourly") in tables:
        first, last = conn.execute(
            "SELECT min(weather_date), max(weather_date) FROM warehouse.fct_weather_hourly"
        ).fetchall()[0]
        if first is not None:
            landed = conn.execute(  # days curated, including those that arrived empty
                "SELECT max(partition_date) FROM warehouse.ingest_audit "
                "WHERE table_name = 'warehouse.fct_weather_hourly'"
            ).fetchall()[0][0]
            missing = validation.missing_weather_hours(conn, first,
                                                       max(last, landed) + timedelta(1))
            if missing:
                lines.append(
                    f"  missing weather hours: {sum(m for _, _, m in missing)} over "
                    f"{len({d for _, d, _ in missing})} days (worst: {missing[0][0]} "
                    f"{missing[0][1]}, {missing[0][2]} h)"
                )
    return lines if len(lines) > 1 else []
