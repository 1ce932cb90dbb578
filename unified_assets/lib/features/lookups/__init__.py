"""Lookup features: values read by key from a curated table, one module per table, each with
`FEATURES` (catalog.lookup declarations). Each is a column of features.flight_features and a
value of the online store, from its declaration alone."""
