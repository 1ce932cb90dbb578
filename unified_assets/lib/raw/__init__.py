"""raw layer: the landing zone and its ingestion into DuckDB."""
