"""features layer: point-in-time correct feature tables, their registry and leakage audit."""
