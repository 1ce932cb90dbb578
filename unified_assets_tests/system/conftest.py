"""Fixtures of the system tier (the shared homes are in the conftest.py above)."""

import dagster as dg
import pytest


@pytest.fixture(scope="session")
def defs():
    """The code location's definitions, as `dagster dev` loads them."""
    from unified_assets.definitions import defs

    return defs


@pytest.fixture
def instance():
    """An ephemeral Dagster instance, disposed of after the test (with its temporary folder)."""
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance
