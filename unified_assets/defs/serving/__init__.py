"""The serving layer of the lineage graph."""
