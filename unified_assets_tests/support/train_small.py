"""Train, evaluate and gate a small delay classifier in this process, as one run.

    python -m unified_assets_tests.support.train_small HOME VARIANT

The run the SIGKILL tests kill (under `unified_assets_tests.support.killpoint`). VARIANT
"champion" is the base parameters; "challenger" has smaller trees (so another model, another
sha256) and a loose champion gate, so that it is promoted when it gets that far. Exits 0 when the
run succeeded.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import date
from pathlib import Path

from unified_assets.lib.models import specs
from unified_assets_tests.support.runs import small, train_and_deploy

WINDOWS = dict(
    train=(date(2013, 1, 1), date(2013, 1, 8)),
    valid=(date(2013, 1, 8), date(2013, 1, 11)),
    test=(date(2013, 1, 11), date(2013, 1, 15)),
)
FEATURE_DAYS = ("2013-01-01", "2013-01-14")


def spec(variant: str) -> specs.ModelSpec:
    base = small(specs.DELAY_CLASSIFIER, budget=1, **WINDOWS)
    if variant == "champion":
        return base
    if variant == "challenger":
        gates = dataclasses.replace(base.gates, champion_tolerance=1.0)
        return small(specs.DELAY_CLASSIFIER, budget=1, gates=gates,
                     params=base.params | {"num_leaves": 7}, **WINDOWS)
    raise SystemExit(f"unknown variant {variant!r}")


def main() -> int:
    home, variant = Path(sys.argv[1]), sys.argv[2]
    return 0 if train_and_deploy(home, spec(variant)).success else 1


if __name__ == "__main__":
    sys.exit(main())
