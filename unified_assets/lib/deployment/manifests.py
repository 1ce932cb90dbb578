"""Deployment decisions under `$UNIFIED_ASSETS_HOME/deployments/<model>/`, and how one is
assembled from a candidate's training set, model and evaluation.

`current.json` is the promoted manifest, the one serving uses. `history/` holds every decision
(promoted, rejected, rolled back) as one file each, created once and never rewritten, named so
that the names sort in time order: `<UTC %Y%m%dT%H%M%S%fZ>-<status>-<version[:12]>.json`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from unified_assets.lib.core.artifacts import write_new
from unified_assets.lib.core.files import write_atomic
from unified_assets.lib.deployment import compare, gates
from unified_assets.lib.models.handoffs import Evaluation, ModelRef, TrainingSet
from unified_assets.lib.models.specs import ModelSpec

DEPLOYMENTS = "deployments"
CURRENT = "current.json"
HISTORY = "history"
PROMOTED = "promoted"
REJECTED = "rejected"
ROLLED_BACK = "rolled_back"
DECISIONS = (PROMOTED, REJECTED)
REQUIRED = ("model", "version", "status")

_STAMP = "%Y%m%dT%H%M%S%fZ"
_STAMP_LEN = len("20130101T000000000000Z")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def deployments_root(home: Path) -> Path:
    return Path(home) / DEPLOYMENTS


def model_dir(home: Path, model: str) -> Path:
    if not isinstance(model, str) or not _NAME.fullmatch(model):
        raise ValueError(f"model name must be letters, digits, '_', '.' or '-', not {model!r}")
    return deployments_root(home) / model


def current_path(home: Path, model: str) -> Path:
    return model_dir(home, model) / CURRENT


def history_dir(home: Path, model: str) -> Path:
    return model_dir(home, model) / HISTORY


def _dumps(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


def _history_files(home: Path, model: str) -> list[Path]:
    folder = history_dir(home, model)
    if not folder.exists():
        return []
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def stamp_after(home: Path, model: str) -> datetime:
    """Now, or one microsecond past the newest history entry if the clock has not moved on."""
    now = datetime.now(UTC)
    files = _history_files(home, model)
    if files:
        try:
            last = datetime.strptime(files[-1].name[:_STAMP_LEN], _STAMP).replace(tzinfo=UTC)
        except ValueError:
            return now
        if now <= last:
            return last + timedelta(microseconds=1)
    return now


def _append_history(home: Path, model: str, entry: dict, status: str, version: str) -> Path:
    """Create one new history file; an existing file is never replaced."""
    folder = history_dir(home, model)
    label = _UNSAFE.sub("_", str(version)[:12])
    for _ in range(100):
        stamp = stamp_after(home, model)
        path = folder / f"{stamp.strftime(_STAMP)}-{status}-{label}.json"
        body = entry | {"recorded_at": stamp.isoformat()}
        if write_new(path, _dumps(body)):
            return path
    raise RuntimeError(f"could not create a new history entry in {folder}")


def _validate(model: str, manifest: dict) -> None:
    if not isinstance(manifest, dict):
        raise ValueError(f"a manifest must be a dict, not {type(manifest).__name__}")
    missing = [key for key in REQUIRED if key not in manifest]
    if missing:
        raise ValueError(f"manifest for {model!r} lacks required keys: {', '.join(missing)}")
    if manifest["model"] != model:
        raise ValueError(f"manifest names model {manifest['model']!r}, recorded under {model!r}")
    if not isinstance(manifest["version"], str) or not manifest["version"]:
        raise ValueError(f"manifest version must be a non-empty str: {manifest['version']!r}")
    if manifest["status"] not in DECISIONS:
        raise ValueError(
            f"manifest status must be one of {', '.join(DECISIONS)}: {manifest['status']!r}"
        )


def record(home: Path, model: str, manifest: dict) -> Path:
    """Record one deployment decision; returns its history file.

    Every decision goes to history. A promoted manifest also replaces current.json
    (atomically, after its history entry exists); a rejected one leaves current.json alone.
    """
    model_dir(home, model)
    _validate(model, manifest)
    path = _append_history(home, model, manifest, manifest["status"], manifest["version"])
    if manifest["status"] == PROMOTED:
        write_atomic(current_path(home, model), path.read_bytes())
    return path


def current(home: Path, model: str) -> dict | None:
    """The promoted manifest, or None when the model has never been promoted."""
    path = current_path(home, model)
    if not path.exists():
        return None
    return json.loads(path.read_text("utf-8"))


def history(home: Path, model: str) -> list[dict]:
    """Every decision, oldest first, each with its `_file` name added."""
    return [
        json.loads(path.read_text("utf-8")) | {"_file": path.name}
        for path in _history_files(home, model)
    ]


def last_rejected(home: Path, model: str) -> bool:
    """Whether the model's latest decision (promoted or rejected) was a rejection."""
    decided = [e["status"] for e in history(home, model) if e.get("status") in DECISIONS]
    return bool(decided) and decided[-1] == REJECTED


def _serving_stack(entries: list[dict]) -> list[dict]:
    """The promoted manifests still in service, oldest first: a promotion pushes, a rollback
    pops the version it withdrew (and every entry of that version above the one restored)."""
    stack: list[dict] = []
    for entry in entries:
        if entry.get("status") == PROMOTED:
            stack.append(entry)
        elif entry.get("status") == ROLLED_BACK:
            withdrawn = entry.get("from_version")
            while stack and stack[-1].get("version") == withdrawn:
                stack.pop()
    return stack


def rollback(home: Path, model: str, reason: str = "manual rollback") -> dict:
    """Restore the version promoted before the current one; returns the restored manifest.

    The event is recorded in history (status "rolled_back") before current.json is replaced.
    History is replayed as a stack of versions in service (a promotion pushes, a rollback
    pops), so a version withdrawn by an earlier rollback is never restored again.
    """
    now = current(home, model)
    if now is None:
        raise ValueError(f"cannot roll back {model!r}: it has no current (promoted) manifest")
    old = now.get("version")
    in_service = _serving_stack(history(home, model))
    below = [e for e in in_service if e.get("version") != old]
    earlier = below[-1] if below else None
    if earlier is None:
        raise ValueError(
            f"cannot roll back {model!r}: no promoted version earlier than {old!r} in history"
        )
    when = datetime.now(UTC).isoformat()
    restored = {k: v for k, v in earlier.items() if k != "_file"} | {
        "status": PROMOTED,
        "restored_by_rollback": True,
        "restored_from_file": earlier["_file"],
        "rolled_back_from": old,
        "rolled_back_at": when,
        "rollback_reason": reason,
    }
    event = {
        "model": model,
        "status": ROLLED_BACK,
        "from_version": old,
        "to_version": earlier.get("version"),
        "reason": reason,
        "rolled_back_at": when,
    }
    _append_history(home, model, event, ROLLED_BACK, old)
    write_atomic(current_path(home, model), _dumps(restored))
    return restored


# -- assembling a decision -------------------------------------------------------------------
# A model's chain hands three documents to the deployment step: the training set (its split
# snapshots by sha256, input DQ, lineage), the model (its sha256, selected features, the
# dataset hashes it was trained on) and the evaluation (metrics, V_val, champion, slices,
# smoke sample). The functions below turn them into the manifest.

METRIC_KEYS = ("primary_metric", "primary", "valid_primary", "valid_baseline", "v_val",
               "worst_slice", "worst_slice_gap")


class StaleHandoff(ValueError):
    """The documents a step received do not belong to one candidate."""


def check_same_candidate(model_name: str, training_set: TrainingSet, model: ModelRef,
                         evaluation: Evaluation | None = None) -> None:
    """Refuse a model trained on other datasets than `training_set` (the training set was
    replaced after the model was trained), and an evaluation of another model."""
    if model.datasets != training_set.dataset_hashes():
        raise StaleHandoff(f"{model_name}: the training set changed after model "
                           f"{model.sha256[:12]} was trained: train it again")
    if evaluation is not None and evaluation.model_sha256 != model.sha256:
        raise StaleHandoff(f"{model_name}: the evaluation is of {evaluation.model_sha256[:12]}"
                           f", the model is {model.sha256[:12]}: evaluate it first")


def feature_efficiency(selected_features: list[str], registered: set[str]) -> dict:
    """FEE's recorded rule: the registered features of the model's table that carry non-zero
    gain in the trained model, over all the table's registered features."""
    selected = [f for f in selected_features if f in registered]
    return {"fee": gates.fee(len(selected), len(registered)), "selected": len(selected),
            "generated": len(registered)}


def readiness(training_set: TrainingSet, fee: float, evaluation: Evaluation) -> float:
    """AMDR = min(input DQ, FEE, V_val); an unknown input DQ counts as 0."""
    input_dq = training_set.input_dq_min
    return gates.amdr(input_dq if input_dq is not None else 0.0, fee, evaluation.v_val)


def champion_comparison(evaluation: Evaluation) -> compare.Comparison | None:
    """The evaluation's comparison of challenger and champion on the same rows, or None."""
    champion = evaluation.champion
    if not champion or champion.get("comparison") is None:
        return None
    return compare.Comparison.from_dict(champion["comparison"])


def gate_results(rules: gates.Gates, evaluation: Evaluation, amdr: float, smoke_ok: bool,
                 smoke_detail: str) -> list[gates.GateResult]:
    """The five gates on the evaluation. A champion that exists but could not be scored on
    the challenger's window (or was not compared with it) fails the champion gate: no
    comparison is no pass, and the challenger waits until it can be compared."""
    champion = evaluation.champion
    comparison = champion_comparison(evaluation)
    results = gates.evaluate(
        rules, evaluation.primary, comparison, amdr, evaluation.worst_slice_gap, smoke_ok,
        smoke_detail,
    )
    if champion and comparison is None:
        if champion.get("note"):
            why = f"could not be scored: {champion['note']}"
        else:
            why = "was not compared with the challenger on the same rows: evaluate again"
        results = [
            r if r.name != "champion" else gates.GateResult(
                "champion", False, None, -rules.champion_tolerance, "comparable",
                f"champion {champion['version'][:12]} {why}",
            )
            for r in results
        ]
    return results


def assemble(
    spec: ModelSpec,
    training_set: TrainingSet,
    model: ModelRef,
    evaluation: Evaluation,
    *,
    registered: set[str],
    smoke: tuple[bool, str],
    model_metadata: dict,
    previous: dict | None,
    dq_weights: dict,
    assets: list[str],
    decided_at: str,
) -> tuple[dict, list[gates.GateResult]]:
    """The deployment decision for one candidate: the manifest and its gate results.

    `registered` are the registered features of the spec's table, `smoke` the reloaded
    artifact's smoke test (passed, detail), `model_metadata` what the store keeps beside the
    model, `previous` the current champion's manifest, `assets` the chain's asset keys.
    """
    check_same_candidate(spec.name, training_set, model, evaluation)
    fee = feature_efficiency(model.selected_features, registered)
    amdr = readiness(training_set, fee["fee"], evaluation)
    results = gate_results(spec.gates, evaluation, amdr, *smoke)
    status, reasons = gates.decide(results)
    champion = evaluation.champion
    comparison = champion_comparison(evaluation)
    document = {
        "model": spec.name,
        "version": model.sha256,
        "status": status,
        "reasons": reasons,
        "task": spec.task,
        "decided_at": decided_at,
        "artifact": {"sha256": model.sha256, "path": model.path, "format": "lightgbm-text"},
        "features": {
            "names": list(spec.features),
            "categorical": list(spec.categorical),
            "dtypes": model_metadata.get("dtypes", {}),
            "table": spec.table,
            "residual_of": spec.residual_of,
        },
        "label": spec.label,
        "threshold": evaluation.threshold,
        "metrics": {k: getattr(evaluation, k) for k in METRIC_KEYS}
        | {"test": {k: v for k, v in evaluation.metrics.items() if k != "calibration"}},
        "gates": [r.as_dict() for r in results],
        "amdr": {
            "value": amdr,
            "input_dq": training_set.input_dq_min,
            "input_dq_by_table": training_set.input_dq,
            "fee": fee["fee"],
            "selected_features": fee["selected"],
            "generated_features": fee["generated"],
            "v_val": evaluation.v_val,
            "dq_weights": dq_weights,
        },
        "lineage": training_set.lineage
        | {"datasets": training_set.dataset_hashes(), "assets": list(assets)},
        "windows": {n: list(r.window) for n, r in training_set.splits.items()},
        "code_version": model_metadata.get("code_version"),
        "trained_at": model_metadata.get("trained_at"),
        "previous_champion": previous["version"] if previous else None,
        "champion_primary": champion["primary"] if champion else None,
        "champion_comparison": comparison.as_dict() if comparison else None,
    }
    return document, results
