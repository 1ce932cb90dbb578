"""The models layer of the lineage graph."""
