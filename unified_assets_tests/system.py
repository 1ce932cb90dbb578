"""System programs some end-to-end tests need (a browser, a database server), found or skipped.

Where a program is missing the test skips and says how to install it; CI sets
UNIFIED_ASSETS_CI=1, which turns that skip into a failure, so CI always runs those tests.
"""

from __future__ import annotations

import os
import shutil

import pytest

CI_ENV = "UNIFIED_ASSETS_CI"


def require_program(name: str, install_hint: str) -> str:
    """The program's path; when absent, skip (fail under UNIFIED_ASSETS_CI=1) with the hint."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed; install it with `{install_hint}`"
    if os.environ.get(CI_ENV) == "1":
        pytest.fail(f"{message} ({CI_ENV}=1: CI must run this test)", pytrace=False)
    pytest.skip(message)
