"""The platform's resources, declared once; environment variables override the defaults."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from unified_assets.lib import config, warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The home folder and its DuckDB warehouse: every read and write of the platform goes here."""

    home: str = ""
    lock_timeout_s: float = 120.0

    @property
    def home_path(self) -> Path:
        """The configured home, or else UNIFIED_ASSETS_HOME (or data/) when the run executes."""
        return Path(self.home).expanduser().resolve() if self.home else config.home_dir()

    @property
    def database(self) -> Path:
        return config.warehouse_path(self.home_path)

    @contextmanager
    def connect(
        self, read_only: bool = False, timeout_s: float | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse, waiting (bounded) while another process writes.
        Sensors pass a short `timeout_s`: a busy warehouse means "try again next tick"."""
        conn = warehouse.connect(
            self.database, read_only=read_only, timeout_s=timeout_s or self.lock_timeout_s
        )
        try:
            if not read_only:
                warehouse.ensure_schemas(conn)
            yield conn
        finally:
            conn.close()


def build_resources() -> dict[str, object]:
    """Resources for the code location: the home folder is read when a run executes; the lock
    wait from UNIFIED_ASSETS_LOCK_TIMEOUT_S when set, else 120 s."""
    return {"warehouse": WarehouseResource(lock_timeout_s=config.lock_timeout_s())}
