"""warehouse layer: typed, deduplicated, conformed tables built in DuckDB SQL."""
