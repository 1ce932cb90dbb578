"""The platform's KPIs (docs/kpis.md), computed from its own tables, run history and
manifests. Plain functions over plain inputs; the scorecard asset gathers the inputs."""

from __future__ import annotations

from dataclasses import dataclass, field

LAYERS = ("raw", "warehouse", "marts", "features", "models", "deployment", "serving",
          "monitoring")
PATH_LAYERS = ("raw", "warehouse", "features", "serving", "monitoring")  # landing -> prediction


@dataclass(frozen=True)
class KpiSettings:
    """EV's weights: business priority per model (δ, default 1) and the scoring speed that
    counts as a scalability factor of 1."""

    priority: dict[str, float] = field(default_factory=dict)
    reference_rows_per_s: float = 10_000.0

    @classmethod
    def parse(cls, priority: str = "", reference_rows_per_s: float = 10_000.0) -> KpiSettings:
        """Priorities as "delay_classifier=2,departures_forecaster=0.5" (unnamed models: 1)."""
        weights = {}
        for part in filter(None, (p.strip() for p in priority.split(","))):
            name, _, value = part.partition("=")
            try:
                weights[name.strip()] = float(value)
            except ValueError as exc:
                raise ValueError(f"EV priority {part!r}: not model=weight") from exc
        if reference_rows_per_s <= 0:
            raise ValueError(f"EV's reference speed must be positive: {reference_rows_per_s}")
        return cls(weights, reference_rows_per_s)


def layer_of(asset_path: list[str]) -> str | None:
    return asset_path[0] if asset_path and asset_path[0] in LAYERS else None


def latency(steps: list[dict]) -> dict:
    """L_dp of one partition's path: seconds per layer and in total. `steps` are the steps
    that built the partition: {"layer", "seconds"}."""
    by_layer = {layer: 0.0 for layer in PATH_LAYERS}
    for step in steps:
        if step["layer"] in by_layer:
            by_layer[step["layer"]] += step["seconds"]
    return {"total_s": sum(by_layer.values()), "by_layer_s": by_layer}


def rel_cicd(decisions: list[dict], failed_runs: list[dict]) -> dict:
    """1 − failed deployments / deployment attempts. A gate's rejection is a correct outcome;
    a crashed retraining or deployment run, and a rollback, are failures."""
    decided = [d for d in decisions if d.get("status") in ("promoted", "rejected")]
    rollbacks = [d for d in decisions if d.get("status") == "rolled_back"]
    # `gate_rejection`: a record of a run failed by a blocking gate, before gates stopped
    # failing runs; a rejection is counted once, among the decisions.
    crashed = [r for r in failed_runs if not r.get("gate_rejection") and (
        r.get("kind") == "retrain" or str(r.get("job", "")).startswith("retrain_"))]
    attempts = len(decided) + len(crashed)
    failures = len(crashed) + len(rollbacks)
    value = None if attempts == 0 else max(0.0, 1 - failures / attempts)
    return {"value": value, "attempts": attempts, "failures": failures,
            "crashed_runs": len(crashed), "rollbacks": len(rollbacks)}


def accuracy_gain(manifest: dict) -> float | None:
    """Acc_j: the model's improvement over its naive baseline on its test window."""
    test = manifest.get("metrics", {}).get("test", {})
    if "auc" in test and test.get("baseline_auc") is not None:
        return test["auc"] - test["baseline_auc"]
    if "skill" in test:
        return test["skill"]
    return None


def enterprise_value(models: list[dict], settings: KpiSettings) -> dict:
    """EV = Σ δ_j · (Acc_j · Scal_j) / Cost_j over deployed models. Each model: name, manifest,
    rows_per_s (scoring speed), cost_s (training + one day's scoring, compute seconds)."""
    rows, total = [], 0.0
    for m in models:
        acc = accuracy_gain(m["manifest"])
        if acc is None or not m.get("rows_per_s") or not m.get("cost_s"):
            continue
        delta = settings.priority.get(m["name"], 1.0)
        scal = m["rows_per_s"] / settings.reference_rows_per_s
        value = delta * acc * scal / m["cost_s"]
        total += value
        rows.append({"model": m["name"], "delta": delta, "acc": acc, "scal": scal,
                     "cost_s": m["cost_s"], "ev": value})
    return {"value": total if rows else None, "models": rows}
