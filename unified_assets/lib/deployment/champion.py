"""The champion on the challenger's rows: the promoted model scored on the same test window,
and the two compared with a non-inferiority test, so the gate decides on paired evidence."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from unified_assets.lib.core import artifacts
from unified_assets.lib.deployment import compare, manifests
from unified_assets.lib.models import evaluation, training
from unified_assets.lib.models.specs import ModelSpec


def champion_score(home: Path, spec: ModelSpec, test: pd.DataFrame, y,
                   challenger) -> dict | None:
    """The promoted model scored on the challenger's test window, and the two compared on those
    same rows (`challenger`: the challenger's predictions), or None without a champion."""
    current = manifests.current(home, spec.name)
    if current is None:
        return None
    served = current.get("features", {})
    champion_spec = dataclasses.replace(spec, residual_of=served.get("residual_of"))
    features = tuple(served.get("names", spec.features))
    if features != spec.features:
        missing = [f for f in features if f not in test.columns]
        if missing:
            return {"version": current["version"], "primary": None,
                    "note": f"champion features not in the test set: {missing}"}
        champion_spec = dataclasses.replace(champion_spec, features=features)
    base = champion_spec.residual_of
    if base and base not in test.columns:
        return {"version": current["version"], "primary": None,
                "note": f"champion's residual base {base} is not in the test set"}
    booster = artifacts.load_model(home, current["artifact"]["sha256"])
    pred = training.predict(booster, champion_spec, test)
    reason = compare.cannot_compare(spec.task, y, challenger, pred)
    if reason:
        return {"version": current["version"], "primary": None, "note": reason}
    comparison = compare.non_inferiority(
        spec.task, y, challenger, pred, margin=spec.gates.champion_tolerance,
        confidence=spec.gates.champion_confidence,
    )
    return {"version": current["version"], "primary": evaluation.primary(spec.task, y, pred),
            "comparison": comparison.as_dict()}
