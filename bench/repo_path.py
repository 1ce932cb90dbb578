"""Puts the repository's root on sys.path, so that a bench run as `python bench/NAME.py` imports
the test support it shares with the tests (`unified_assets_tests.support`, which is not
installed: it is no part of the package)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
