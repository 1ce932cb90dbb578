"""Plain Python logic of the platform: no Dagster imports, each module tested on its own."""
