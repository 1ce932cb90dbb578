"""The features layer of the lineage graph."""
