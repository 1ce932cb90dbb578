"""airlines: carrier codes and names, one reference file."""

from unified_assets.lib.quality.checks import sql_present
from unified_assets.lib.sources.spec import SourceSpec
from unified_assets.lib.warehouse.transforms import Column, matches

SOURCE = SourceSpec(
    name="airlines",
    description="Carrier codes and names, as they arrived.",
    columns=("carrier", "name"),
    embedded="airlines.csv",
    table="warehouse.dim_carrier",
    table_description="Airlines by carrier code.",
    typed=(Column("carrier", "VARCHAR", "carrier"), Column("name", "VARCHAR", "name")),
    key=("carrier",),
    required=("carrier", "name"),
    rules=(matches("carrier", "[A-Z0-9]{2}"),),
    not_null=("name",),
    expected=("carrier", "name"),
    dq_required=sql_present("carrier", "name"),
)
