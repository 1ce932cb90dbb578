"""Development utilities for the tests, the benches and local trials (a throw-away PostgreSQL
server, for one). The code location never imports this package."""
