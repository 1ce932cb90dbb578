"""The platform's status in a few lines: what landed, rows per layer, quarantine, DQ."""

from __future__ import annotations

from pathlib import Path

from unified_assets.lib import config, landing, warehouse


def status_report(home: Path) -> str:
    lines = [f"home: {home}"]
    for table in landing.DAILY_TABLES:
        days = landing.landed_days(home, table)
        span = f"{days[0]} .. {days[-1]}" if days else "none"
        lines.append(f"landed {table}: {len(days)} days ({span})")
    database = config.warehouse_path(home)
    if not database.exists():
        lines.append(f"no warehouse yet at {database}")
        return "\n".join(lines)
    conn = warehouse.connect(database, read_only=True)
    try:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = 'wh' ORDER BY 1, 2"
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
    finally:
        conn.close()
    return "\n".join(lines)
