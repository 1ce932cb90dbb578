"""The marts layer of the lineage graph."""
