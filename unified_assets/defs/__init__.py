"""Dagster objects only, one folder per layer of the lineage graph."""
