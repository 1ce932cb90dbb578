"""The feature registry: every feature column the platform generates, what it means, its type,
the curated tables it comes from, its owner, and the column holding when its value was known."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from unified_assets.lib.features.tables import (
    COLUMNS,
    DATE,
    FLIGHT_FEATURES,
    FLIGHTS,
    GRAINS,
    LIVE_HOURS,
    ORIGIN_DAILY,
    PLANE,
    RATE_DAYS,
    WEATHER,
)

# The columns of a flight-feature row that the online path knows from the request itself: a
# lookup feature's key must be among them.
REQUEST_COLUMNS = ("flight_date", "carrier", "flight", "origin", "dest", "tailnum", "sched_hour")


@dataclass(frozen=True)
class Lookup:
    """A feature that is a value looked up by key in a curated table: one declaration gives the
    batch column (a join in the feature SQL) and the online value (the same rows, exported to
    the online store), so the two cannot differ.

    `on` pairs a column of the feature row with a key column of `table`; `value` is SQL over a
    row of `table`; `default` (SQL) is the value when no row matches."""

    table: str
    on: tuple[tuple[str, str], ...]
    value: str
    sql_type: str
    default: str = "NULL"

    def rows_sql(self) -> str:
        """The looked-up rows: key columns k0, k1, ... and the value v."""
        keys = ", ".join(f"{col} AS k{i}" for i, (_, col) in enumerate(self.on))
        return f"SELECT {keys}, {self.value} AS v FROM {self.table}"


@dataclass(frozen=True)
class AsOf:
    """A feature that is a value of the latest row of a curated table known by the row's cutoff,
    per key: one declaration gives the batch column (an ASOF join in the feature SQL) and the
    online value (the same rows exported, searched by time), so the two cannot differ.

    `on` pairs a request column with a key column of `table`; `known` is SQL over a row of
    `table`: when it became known (naive UTC); `value` is SQL over the row; `as_of_column` is
    the feature-table column that holds the `known` of the row used (the features' as-of).
    Features of one table, key, `known` and `as_of_column` share one join."""

    table: str
    on: tuple[tuple[str, str], ...]
    known: str
    value: str
    sql_type: str
    as_of_column: str

    @property
    def group(self) -> tuple:
        return (self.table, self.on, self.known, self.as_of_column)


def as_of_groups(table: str, registry: dict | None = None) -> list[list[Feature]]:
    """The as-of features of a feature table, grouped by the join they share, in registry
    order."""
    groups: dict[tuple, list[Feature]] = {}
    for f in features_of(table, registry):
        if f.asof is not None:
            groups.setdefault(f.asof.group, []).append(f)
    return list(groups.values())


def as_of_rows_sql(group: list[Feature]) -> str:
    """A group's rows: key columns k0, k1, ..., `known`, and each feature's value by name."""
    first = group[0].asof
    keys = ", ".join(f"{col} AS k{i}" for i, (_, col) in enumerate(first.on))
    values = ", ".join(f"{f.asof.value} AS {f.name}" for f in group)
    return f"SELECT {keys}, {first.known} AS known, {values} FROM {first.table}"


@dataclass(frozen=True)
class Feature:
    """One feature column: what it is, where it comes from, and when its value was known."""

    name: str
    description: str
    dtype: str  # "float" | "int" | "category" | "bool"
    source_tables: tuple[str, ...]
    owner: str
    table: str  # FLIGHT_FEATURES or ORIGIN_DAILY
    as_of: str  # the column holding when the value was known ("cutoff_utc": known in advance)
    lookup: Lookup | None = None  # declared as a lookup: computed from this declaration alone
    asof: AsOf | None = None  # declared as an as-of value: computed from this declaration alone

    def __post_init__(self):
        if self.asof is not None:
            self._check_asof()
        if self.lookup is None:
            return
        if self.table != FLIGHT_FEATURES:
            raise ValueError(f"{self.name}: lookup features are flight features")
        unknown = [c for c, _ in self.lookup.on if c not in REQUEST_COLUMNS]
        if unknown:
            raise ValueError(f"{self.name}: its lookup key {unknown} is not known online "
                             f"(a request gives {', '.join(REQUEST_COLUMNS)})")
        if self.as_of != "cutoff_utc":
            raise ValueError(f"{self.name}: a lookup is reference data, known in advance: its "
                             "availability rule is cutoff_utc")
        if self.lookup.table not in self.source_tables:
            raise ValueError(f"{self.name}: its source tables must name {self.lookup.table}")


    def _check_asof(self) -> None:
        declared = self.asof
        if self.table != FLIGHT_FEATURES:
            raise ValueError(f"{self.name}: as-of features are flight features")
        unknown = [c for c, _ in declared.on if c not in REQUEST_COLUMNS]
        if unknown:
            raise ValueError(f"{self.name}: its key {unknown} is not known online "
                             f"(a request gives {', '.join(REQUEST_COLUMNS)})")
        if self.as_of != declared.as_of_column:
            raise ValueError(f"{self.name}: its availability rule is its as-of column "
                             f"{declared.as_of_column}, not {self.as_of}")
        if declared.table not in self.source_tables:
            raise ValueError(f"{self.name}: its source tables must name {declared.table}")


OWNER = "ml-platform"
DTYPES = ("float", "int", "category", "bool")


def _flight(name: str, dtype: str, as_of: str, sources: tuple[str, ...], text: str) -> Feature:
    return Feature(name, text, dtype, sources, OWNER, FLIGHT_FEATURES, as_of)


def lookup(name: str, dtype: str, table: str, on: dict[str, str], value: str, sql_type: str,
           text: str, default: str = "NULL", owner: str = OWNER) -> Feature:
    """A flight feature looked up by key in a curated table (see `Lookup`)."""
    return Feature(name, text, dtype, (table,), owner, FLIGHT_FEATURES, "cutoff_utc",
                   Lookup(table, tuple(on.items()), value, sql_type, default))


def _daily(name: str, dtype: str, as_of: str, sources: tuple[str, ...], text: str) -> Feature:
    return Feature(name, text, dtype, sources, OWNER, ORIGIN_DAILY, as_of)


_F, _W, _P, _D = (FLIGHTS,), (WEATHER,), (PLANE,), (DATE,)
_WEATHER_TEXT = {
    "temp_f": "temperature (F)",
    "dewp_f": "dew point (F)",
    "humid_pct": "relative humidity (%)",
    "wind_speed_mph": "wind speed (mph)",
    "wind_gust_mph": "wind gust (mph)",
    "precip_in": "precipitation (inches)",
    "pressure_mb": "sea level pressure (millibars)",
    "visib_mi": "visibility (miles)",
}
_GRAIN_TEXT = {"carrier": "the carrier", "origin": "the origin", "route": "the route"}

_FEATURES: list[Feature] = [
    _flight("carrier", "category", "cutoff_utc", _F, "Operating carrier code (schedule)."),
    _flight("origin", "category", "cutoff_utc", _F, "Origin airport (schedule)."),
    _flight("dest", "category", "cutoff_utc", _F, "Destination airport (schedule)."),
    _flight("sched_hour", "int", "cutoff_utc", _F, "Scheduled local departure hour."),
    _flight("day_of_week", "int", "cutoff_utc", _D, "ISO day of week of the flight date."),
    _flight("month", "int", "cutoff_utc", _D, "Month of the flight date."),
    _flight("days_to_holiday", "int", "cutoff_utc", _D, "Days to the nearest US holiday."),
    _flight("distance_mi", "int", "cutoff_utc", _F, "Route distance in miles."),
    _flight("plane_age_years", "int", "cutoff_utc", _F + _P, "Flight year minus the year built."),
    *(
        Feature(name, f"Origin {text}: latest reading known by the cutoff (an hour after its "
                "hour).", "float", _W, OWNER, FLIGHT_FEATURES, "weather_as_of",
                asof=AsOf(WEATHER, (("origin", "origin"),),
                          # a reading of hour H is taken late in the hour (METAR at about
                          # H:51): it is known, conservatively, at H + 1 hour
                          "time_hour_utc + INTERVAL 1 HOUR", name, "DOUBLE", "weather_as_of"))
        for name, text in _WEATHER_TEXT.items()
    ),
    *(
        _flight(
            f"{grain}_late_rate_{days}d",
            "float",
            "rates_as_of",
            _F,
            f"Share of {_GRAIN_TEXT[grain]}'s arrived flights more than 15 min late, among "
            f"outcomes known in the {days} New York days before the cutoff's day.",
        )
        for grain in GRAINS
        for days in RATE_DAYS
    ),
    _flight(
        "carrier_flights_28d",
        "int",
        "rates_as_of",
        _F,
        "Outcomes the 28-day carrier late rate saw.",
    ),
    _flight(
        "origin_hour_departures",
        "int",
        "cutoff_utc",
        _F,
        "Flights scheduled out of the origin in the same local hour of the day (schedule).",
    ),
    _flight(
        "prev_arr_delay_min",
        "int",
        "inbound_as_of",
        _F,
        "Arrival delay of the plane's latest earlier flight that day known by the cutoff.",
    ),
    _flight(
        "has_prev_flight",
        "bool",
        "inbound_as_of",
        _F,
        "Whether an earlier flight of the plane that day was known by the cutoff.",
    ),
    _flight(
        "prev_dep_delay_min",
        "int",
        "prev_dep_as_of",
        _F,
        "Departure delay of the plane's latest earlier flight that day that had left by the "
        "cutoff (known when it leaves, before it lands).",
    ),
    _flight(
        "origin_dep_delay_3h",
        "float",
        "live_as_of",
        _F,
        f"Mean departure delay at the origin over the {LIVE_HOURS} hours before the cutoff.",
    ),
    _flight(
        "origin_departures_3h",
        "int",
        "live_as_of",
        _F,
        f"Departures from the origin in the {LIVE_HOURS} hours before the cutoff.",
    ),
    _flight(
        "carrier_dep_delay_3h",
        "float",
        "live_as_of",
        _F,
        f"Mean departure delay of the carrier (all NYC origins) over the {LIVE_HOURS} hours "
        "before the cutoff.",
    ),
    _daily("departures_d0", "int", "history_as_of", _F,
           "Departures at the origin on day d that had left by its midnight."),
    _daily("departures_d1", "int", "history_as_of", _F, "Departures on day d-1."),
    _daily("departures_lag7", "int", "history_as_of", _F, "Departures on target-7 (NULL after d)."),
    _daily(
        "departures_lag14", "int", "history_as_of", _F, "Departures on target-14 (NULL after d)."
    ),
    _daily("departures_mean_7d", "float", "history_as_of", _F, "Mean departures, d-6 .. d."),
    _daily("departures_mean_28d", "float", "history_as_of", _F, "Mean departures, d-27 .. d."),
    _daily("target_day_of_week", "int", "cutoff_utc", _D, "ISO day of week of the target day."),
    _daily("target_month", "int", "cutoff_utc", _D, "Month of the target day."),
    _daily("target_days_to_holiday", "int", "cutoff_utc", _D, "Target day's days to a US holiday."),
]



def _declared() -> list[Feature]:
    """The lookup features declared in lookups/, one module per curated table they read, each
    with `FEATURES`: adding one is adding a declaration there, nothing else."""
    found = []
    for module in pkgutil.iter_modules([str(Path(__file__).with_name("lookups"))]):
        declared = importlib.import_module(f"{__package__}.lookups.{module.name}")
        found += list(getattr(declared, "FEATURES", ()))
    return found


def _registry(features: list[Feature]) -> dict[str, Feature]:
    names = [f.name for f in features]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"features declared twice: {twice}")
    return {f.name: f for f in features}


REGISTRY: dict[str, Feature] = _registry([*_FEATURES, *_declared()])


def lookups_of(table: str, registry: dict[str, Feature] | None = None) -> list[Feature]:
    """The lookup features of a feature table, in registry order."""
    return [f for f in features_of(table, registry) if f.lookup is not None]


def layout(table: str, registry: dict[str, Feature] | None = None
           ) -> tuple[tuple[str, str], ...]:
    """A feature table's columns and SQL types: its base layout, then each as-of group's
    features and as-of column, then its lookup features."""
    asof = [(f.name, f.asof.sql_type) for group in as_of_groups(table, registry) for f in group]
    asof += [(group[0].asof.as_of_column, "TIMESTAMP") for group in as_of_groups(table, registry)]
    return (*COLUMNS[table], *asof,
            *((f.name, f.lookup.sql_type) for f in lookups_of(table, registry)))


def source_tables(table: str, registry: dict[str, Feature] | None = None) -> list[str]:
    """The curated tables a feature table is computed from, from its features' declarations:
    what its asset depends on."""
    return sorted({t for f in features_of(table, registry) for t in f.source_tables})


def features_of(table: str, registry: dict[str, Feature] | None = None) -> list[Feature]:
    """The registered features of one feature table, in registry order."""
    if table not in COLUMNS:
        raise ValueError(f"unknown feature table {table!r}; known: {sorted(COLUMNS)}")
    return [f for f in (registry or REGISTRY).values() if f.table == table]
