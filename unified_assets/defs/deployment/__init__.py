"""The deployment layer of the lineage graph."""
