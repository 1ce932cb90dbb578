"""The candidate ledger: what the latest training of a model produced, step by step.

`artifacts/candidates/<model>.json` points at the immutable artifacts of the newest candidate
(its dataset snapshots, its model, its evaluation), so that each step of the model's assets
reads exactly what the step before it wrote. It is a pointer, rewritten atomically; the
artifacts it points at are never rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path

from unified_assets.lib.artifacts import artifacts_root
from unified_assets.lib.landing import write_atomic


def ledger_path(home: Path, model: str) -> Path:
    return artifacts_root(home) / "candidates" / f"{model}.json"


def read(home: Path, model: str, section: str | None = None) -> dict:
    """The ledger (or one section of it); a clear error when the step before has not run."""
    path = ledger_path(home, model)
    if not path.exists():
        raise FileNotFoundError(f"no candidate for {model} yet ({path}): materialize its "
                                "training set first")  # fmt: skip
    ledger = json.loads(path.read_text())
    if section is None:
        return ledger
    if section not in ledger:
        raise KeyError(f"the {model} candidate has no {section!r} yet ({path}): materialize "
                       "the step that writes it first")  # fmt: skip
    return ledger[section]


def update(home: Path, model: str, section: str, value: dict, reset: bool = False) -> None:
    """Set one section; `reset` starts a new candidate (a new training set)."""
    path = ledger_path(home, model)
    ledger = {} if reset or not path.exists() else json.loads(path.read_text())
    ledger[section] = value
    write_atomic(path, json.dumps(ledger, indent=2, sort_keys=True, default=str).encode())
