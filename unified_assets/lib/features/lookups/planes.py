"""The plane's own facts, from the aircraft register (warehouse.dim_plane), by tail number."""

from unified_assets.lib.features.catalog import lookup

FEATURES = (
    lookup("seats", "int", "warehouse.dim_plane", {"tailnum": "tailnum"}, "seats", "SMALLINT",
           "Seats of the plane (dim_plane)."),
    lookup("engine", "category", "warehouse.dim_plane", {"tailnum": "tailnum"}, "engine",
           "VARCHAR", "Engine type of the plane (dim_plane)."),
)
