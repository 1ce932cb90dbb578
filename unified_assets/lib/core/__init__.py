"""Shared plumbing: the home layout, the DuckDB file, files and hashing, the artifact store,
the Dask connection."""
