"""Fixtures of the system tier (the shared homes are in the conftest.py above)."""

import pytest


@pytest.fixture(scope="session")
def defs():
    """The code location's definitions, as `dagster dev` loads them."""
    from unified_assets.definitions import defs

    return defs
