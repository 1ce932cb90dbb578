"""marts layer: aggregates a BI tool reads."""
