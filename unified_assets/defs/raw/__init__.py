"""The raw layer of the lineage graph."""
