"""One pandera schema per table, for every layer; validated lazily (all failures at once).

The source tables' raw and curated schemas are derived from their declarations (lib/sources/);
the others are written here. Severity: a check whose name starts with `warn_` only warns (the
real data's own flaws, such as an unknown tail number or a missing reading); every other check
(types, keys, ranges, nullability) protects everything downstream and blocks.
"""

from __future__ import annotations

import pandera.pandas as pa

from unified_assets.lib.quality.checks import BOOL, DT, INT, NUM, STR, column, in_range, warn
from unified_assets.lib.sources import SOURCES

SCHEMAS: dict[str, pa.DataFrameSchema] = {
    **{s.raw_table: s.raw_schema() for s in SOURCES.values()},
    **{s.table: s.schema() for s in SOURCES.values()},
    "warehouse.dim_date": pa.DataFrameSchema(
        {
            "date": column(DT, nullable=False, unique=True),
            "year": column(INT, nullable=False),
            "quarter": column(INT, nullable=False, checks=[in_range(1, 4)]),
            "month": column(INT, nullable=False, checks=[in_range(1, 12)]),
            "day": column(INT, nullable=False, checks=[in_range(1, 31)]),
            "day_of_week": column(INT, nullable=False, checks=[in_range(1, 7)]),
            "is_weekend": column(BOOL, nullable=False),
            "holiday": column(STR),
            "days_to_nearest_holiday": column(INT, nullable=False, checks=[pa.Check.ge(0)]),
        },
        name="warehouse.dim_date",
        strict=True,
    ),
}


def _mart(table: str, grain: tuple[str, ...]) -> pa.DataFrameSchema:
    rate = [in_range(0, 1)]
    return pa.DataFrameSchema(
        {
            "month": column(DT, nullable=False),
            **{g: column(STR, nullable=False) for g in grain},
            "flights": column(INT, nullable=False, checks=[pa.Check.ge(1)]),
            "cancelled": column(INT, nullable=False, checks=[pa.Check.ge(0)]),
            "diverted": column(INT, nullable=False, checks=[pa.Check.ge(0)]),
            "arrived": column(INT, nullable=False, checks=[pa.Check.ge(0)]),
            "on_time_rate": column(NUM, checks=rate),
            "mean_dep_delay_min": column(NUM),
            "mean_arr_delay_min": column(NUM),
            "p90_dep_delay_min": column(NUM),
            "p90_arr_delay_min": column(NUM),
        },
        checks=[
            pa.Check(
                lambda df: df.arrived + df.cancelled + df.diverted == df.flights,
                name="outcomes_add_up",
            ),
            warn(lambda df: df.cancelled < df.flights, "not_all_cancelled"),
        ],
        unique=["month", *grain],
        name=table,
        strict=True,
    )


SCHEMAS |= {
    "marts.carrier_origin_monthly": _mart("marts.carrier_origin_monthly", ("carrier", "origin")),
    "marts.route_monthly": _mart("marts.route_monthly", ("origin", "dest")),
}
