"""Data quality on every table: pandera schemas and the DQ score."""
