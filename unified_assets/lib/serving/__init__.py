"""serving layer: the online store, the served models and the request log."""
