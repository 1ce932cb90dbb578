"""unified_assets: data engineering and machine learning as one Dagster lineage graph."""
