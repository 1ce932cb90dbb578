"""The words a table's quality is declared in: pandera columns and checks (a check whose name
starts with `warn_` only warns), and the SQL of its DQ score (`QualitySpec`). Source
declarations (lib/sources/) and the schemas of the other tables (schemas.py) use them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pandera.pandas as pa

WARN_PREFIX = "warn_"

STR = pd.StringDtype()
INT = pd.Int64Dtype()
DT = "datetime64[ns]"
NUM = pd.Float64Dtype()
BOOL = pd.BooleanDtype()
SHA256 = r"^[0-9a-f]{64}$"

# A curated column's SQL type, as pandera sees it once DuckDB hands it to pandas.
SQL_DTYPES = {"VARCHAR": STR, "DATE": DT, "TIMESTAMP": DT, "TINYINT": INT, "SMALLINT": INT,
              "INTEGER": INT, "BIGINT": INT, "DOUBLE": NUM, "BOOLEAN": BOOL}


def warn(fn, name: str, **kwargs) -> pa.Check:
    """A soft check: a failure is measured and reported, and nothing downstream stops."""
    return pa.Check(fn, name=WARN_PREFIX + name, **kwargs)


def column(dtype, nullable: bool = True, checks=None, unique: bool = False) -> pa.Column:
    return pa.Column(dtype, nullable=nullable, checks=checks or [], unique=unique, coerce=True)


def in_range(low: float, high: float) -> pa.Check:
    return pa.Check.in_range(low, high)


def numeric_text(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").notna()


def present(s: pd.Series) -> pd.Series:
    return s.notna()


def warn_present(name: str) -> pa.Check:
    """Warns on a missing value (the column may be null; its absence is still worth counting)."""
    return warn(present, name, ignore_na=False)


@dataclass(frozen=True)
class QualitySpec:
    """How C, A and V of the DQ score are measured for one table (SQL over its rows)."""

    partition_column: str | None = None
    required: tuple[str, ...] = ()  # SQL: TRUE when the required cell is present
    accuracy: tuple[str, ...] = ()  # SQL per row: TRUE when consistent with the world
    validity: tuple[str, ...] = ()  # SQL per row: TRUE when it passes the schema
    audited: bool = False  # V from the ingest audit instead of `validity`
    notes: dict[str, str] = field(default_factory=dict)


def sql_present(*cols: str) -> tuple[str, ...]:
    return tuple(f"{c} IS NOT NULL" for c in cols)


def sql_parses(*cols: str) -> tuple[str, ...]:
    return tuple(f"{c} IS NULL OR TRY_CAST({c} AS DOUBLE) IS NOT NULL" for c in cols)


def sql_in_dimension(col: str, key: str, dim: str) -> str:
    """TRUE when the value is unknown or the dimension `warehouse.<dim>` knows it."""
    return f"{col} IS NULL OR {col} IN (SELECT {key} FROM warehouse.{dim})"


# -- checks of the shipped sources' data, tested on their own (unit/quality/test_schemas.py) --
STUCK_HOURS = 6
"""A wind sensor that reports the same nonzero speed this many hours in a row is stuck (calm
hours repeat 0 naturally; in 2013 one nonzero reading repeated 6 hours, none longer)."""


def wind_not_stuck(df: pd.DataFrame) -> pd.Series:
    """False on the readings of a run of STUCK_HOURS or more consecutive hours at one origin
    with the same nonzero wind speed."""
    rows = df.sort_values(["origin", "time_hour_utc"])
    speed, origin, hour = rows["wind_speed_mph"], rows["origin"], rows["time_hour_utc"]
    same = ((origin == origin.shift()) & (speed == speed.shift())
            & (hour - hour.shift() == pd.Timedelta(hours=1)) & (speed > 0)).fillna(False)
    run = (~same).cumsum()
    length = same.groupby(run).transform("size")
    stuck = (length >= STUCK_HOURS) & (speed > 0).fillna(False)
    return ~stuck.reindex(df.index).astype(bool)


OUTCOME_GAP_SHARE = 0.5
OUTCOME_GAP_MIN_FLIGHTS = 20
"""A carrier's day whose departed flights (at least this many) are more than half without an
arrival has lost its outcomes, not diverted them: in 2013 no carrier's day passed 16 %."""


def outcomes_reported(df: pd.DataFrame) -> pd.Series:
    """False on the departed flights without an arrival of a carrier's day that lost its
    outcomes (the labels of the flight models)."""
    departed = df["dep_ts"].notna()
    missing = departed & df["arr_delay_min"].isna()
    counts = pd.DataFrame({"departed": departed, "missing": missing}).groupby(
        [df["flight_date"], df["carrier"]]).transform("sum")
    lost = ((counts["departed"] >= OUTCOME_GAP_MIN_FLIGHTS)
            & (counts["missing"] > OUTCOME_GAP_SHARE * counts["departed"]))
    return ~(lost & missing)
