"""planes: the aircraft register, one reference file."""

from unified_assets.lib.quality.checks import in_range, sql_present, warn_present
from unified_assets.lib.sources.spec import SourceSpec
from unified_assets.lib.warehouse.transforms import Column, matches, parsed_each, within

SOURCE = SourceSpec(
    name="planes",
    description="The aircraft register: build year, seats and engines by tail number, as it "
    "arrived.",
    columns=("tailnum", "year", "type", "manufacturer", "model", "engines", "seats", "speed",
             "engine"),
    numeric=("year", "engines", "seats", "speed"),
    embedded="planes.csv",
    table="warehouse.dim_plane",
    table_description="Aircraft by tail number: build year, seats, engines.",
    typed=(
        Column("tailnum", "VARCHAR", "tailnum"),
        Column("year_built", "SMALLINT", "TRY_CAST(year AS SMALLINT)"),
        Column("type", "VARCHAR", "type"),
        Column("manufacturer", "VARCHAR", "manufacturer"),
        Column("model", "VARCHAR", "model"),
        Column("engines", "SMALLINT", "TRY_CAST(engines AS SMALLINT)"),
        Column("seats", "SMALLINT", "TRY_CAST(seats AS SMALLINT)"),
        Column("speed_mph", "SMALLINT", "TRY_CAST(speed AS SMALLINT)"),
        Column("engine", "VARCHAR", "engine"),
    ),
    key=("tailnum",),
    required=("tailnum",),
    rules=(
        *parsed_each("SMALLINT", "year", "engines", "seats", "speed"),
        within("year_built", 1900, 2030, "year"),
        within("seats", 1, 1000, "seats"),
        within("engines", 0, 8, "engines"),
        matches("tailnum", "[A-Z0-9]{2,7}"),
    ),
    checks={
        "year_built": [in_range(1900, 2030), warn_present("year_present")],
        "engines": [in_range(0, 8)],
        "seats": [in_range(1, 1000)],
    },
    expected=("tailnum", "year", "type", "manufacturer", "model", "engines", "seats"),
    dq_required=sql_present("tailnum", "year_built", "type", "manufacturer", "model", "engines",
                            "seats"),
    dq_accuracy=("year_built IS NULL OR year_built <= 2014",),
)
