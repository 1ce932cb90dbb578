"""The served home, built once per session and copied by each serving test module (each writes
to it: request logs, a tampered artifact)."""

from __future__ import annotations

import json

import pytest

from unified_assets_tests.conftest import copy_of, shared_template
from unified_assets_tests.support.serving import VERSIONS, build_served_home


@pytest.fixture(scope="module")
def served_home(tmp_path_factory) -> dict:
    """A fresh copy of the served home: {"home", "champion", "challenger"}."""
    template = shared_template(tmp_path_factory, "served", build_served_home)
    home = copy_of(template, tmp_path_factory.mktemp("serving") / "home")
    return {"home": home, **json.loads((home / VERSIONS).read_text())}
