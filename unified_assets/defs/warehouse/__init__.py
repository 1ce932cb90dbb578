"""The warehouse layer of the lineage graph."""
