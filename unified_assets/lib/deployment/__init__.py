"""deployment layer: gates, champion comparisons and manifests."""
