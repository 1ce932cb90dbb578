"""The repository and the system programs some system tests need (a browser, a database
server), found or skipped with the command that installs them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CI_ENV = "UNIFIED_ASSETS_CI"


def require_program(name: str, install_hint: str) -> str:
    """The program's path; when absent, skip (fail under UNIFIED_ASSETS_CI=1) with the hint.

    Some end-to-end tests need a system program (a browser, a database server); CI sets
    UNIFIED_ASSETS_CI=1, which turns the skip into a failure, so CI always runs those tests."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed; install it with `{install_hint}`"
    if os.environ.get(CI_ENV) == "1":
        pytest.fail(f"{message} ({CI_ENV}=1: CI must run this test)", pytrace=False)
    pytest.skip(message)
