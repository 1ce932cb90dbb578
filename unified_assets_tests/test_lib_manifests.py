"""Deployment manifests: current.json, an append-only history, and rollback."""

from __future__ import annotations

import pytest

from unified_assets.lib import manifests

MODEL = "late_arrival"


def manifest(version: str, status: str = "promoted", **extra) -> dict:
    return {"model": MODEL, "version": version, "status": status, **extra}


def history_bytes(home) -> dict[str, bytes]:
    folder = manifests.history_dir(home, MODEL)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_promoted_then_rejected(tmp_path):
    first = manifests.record(tmp_path, MODEL, manifest("a" * 64, auc=0.71))
    second = manifests.record(tmp_path, MODEL, manifest("b" * 64, "rejected", auc=0.60))
    assert first.name < second.name
    assert first.name.endswith(f"-promoted-{'a' * 12}.json")
    assert second.name.endswith(f"-rejected-{'b' * 12}.json")
    now = manifests.current(tmp_path, MODEL)
    assert now["version"] == "a" * 64 and now["auc"] == 0.71
    entries = manifests.history(tmp_path, MODEL)
    assert [(e["version"], e["status"]) for e in entries] == [
        ("a" * 64, "promoted"),
        ("b" * 64, "rejected"),
    ]
    assert [e["_file"] for e in entries] == [first.name, second.name]


def test_nothing_promoted_means_no_current(tmp_path):
    assert manifests.current(tmp_path, MODEL) is None
    assert manifests.history(tmp_path, MODEL) == []
    manifests.record(tmp_path, MODEL, manifest("v1", "rejected"))
    assert manifests.current(tmp_path, MODEL) is None


def test_history_files_are_never_modified(tmp_path):
    manifests.record(tmp_path, MODEL, manifest("v1"))
    manifests.record(tmp_path, MODEL, manifest("v2", "rejected"))
    before = history_bytes(tmp_path)
    # Same version and status again, in quick succession: new files, old ones untouched.
    for _ in range(3):
        manifests.record(tmp_path, MODEL, manifest("v2", "rejected"))
    manifests.record(tmp_path, MODEL, manifest("v3"))
    manifests.rollback(tmp_path, MODEL)
    after = history_bytes(tmp_path)
    assert len(after) == len(before) + 5
    assert {name: after[name] for name in before} == before
    names = [e["_file"] for e in manifests.history(tmp_path, MODEL)]
    assert names == sorted(names) and len(set(names)) == len(names)


def test_a_history_entry_is_never_replaced_even_with_the_same_name(tmp_path, monkeypatch):
    fixed = manifests._stamp_after(tmp_path, MODEL)
    monkeypatch.setattr(manifests, "_stamp_after", lambda home, model: fixed)
    first = manifests.record(tmp_path, MODEL, manifest("v1", "rejected", run=1))
    before = first.read_bytes()
    with pytest.raises(RuntimeError, match="could not create"):
        manifests.record(tmp_path, MODEL, manifest("v1", "rejected", run=2))
    assert first.read_bytes() == before
    assert [e["run"] for e in manifests.history(tmp_path, MODEL)] == [1]


def test_rollback_restores_the_previous_promoted_version(tmp_path):
    manifests.record(tmp_path, MODEL, manifest("v1", auc=0.70))
    manifests.record(tmp_path, MODEL, manifest("v9", "rejected"))
    manifests.record(tmp_path, MODEL, manifest("v2", auc=0.72))
    restored = manifests.rollback(tmp_path, MODEL, reason="drift alarm")
    now = manifests.current(tmp_path, MODEL)
    assert now == restored
    assert now["version"] == "v1" and now["auc"] == 0.70 and now["status"] == "promoted"
    assert now["restored_by_rollback"] is True
    assert now["rolled_back_from"] == "v2"
    assert now["rollback_reason"] == "drift alarm" and now["rolled_back_at"]
    event = manifests.history(tmp_path, MODEL)[-1]
    assert event["status"] == "rolled_back"
    assert (event["from_version"], event["to_version"]) == ("v2", "v1")
    assert event["reason"] == "drift alarm" and event["rolled_back_at"]
    assert len(manifests.history(tmp_path, MODEL)) == 4


def test_a_rolled_back_version_is_not_restored_by_the_next_rollback(tmp_path):
    for version in ("v1", "v2", "v3"):
        manifests.record(tmp_path, MODEL, manifest(version))
    assert manifests.rollback(tmp_path, MODEL)["version"] == "v2"
    assert manifests.rollback(tmp_path, MODEL)["version"] == "v1"
    with pytest.raises(ValueError, match="no promoted version earlier"):
        manifests.rollback(tmp_path, MODEL)


def test_rollback_skips_repromotions_of_the_same_version(tmp_path):
    for version in ("v1", "v2", "v2"):
        manifests.record(tmp_path, MODEL, manifest(version))
    assert manifests.rollback(tmp_path, MODEL)["version"] == "v1"


def test_a_version_withdrawn_earlier_stays_withdrawn_after_a_later_promotion(tmp_path):
    # promote A, promote B, roll back (A), promote C, roll back: A again, never B
    for version in ("A", "B"):
        manifests.record(tmp_path, MODEL, manifest(version))
    assert manifests.rollback(tmp_path, MODEL)["version"] == "A"
    manifests.record(tmp_path, MODEL, manifest("C"))
    assert manifests.rollback(tmp_path, MODEL)["version"] == "A"
    assert manifests.current(tmp_path, MODEL)["version"] == "A"
    with pytest.raises(ValueError, match="no promoted version earlier"):
        manifests.rollback(tmp_path, MODEL)


def test_rollback_needs_an_earlier_promoted_version(tmp_path):
    with pytest.raises(ValueError, match="no current"):
        manifests.rollback(tmp_path, MODEL)
    manifests.record(tmp_path, MODEL, manifest("v1"))
    manifests.record(tmp_path, MODEL, manifest("v2", "rejected"))
    before = history_bytes(tmp_path)
    with pytest.raises(ValueError, match="no promoted version earlier"):
        manifests.rollback(tmp_path, MODEL)
    assert history_bytes(tmp_path) == before
    assert manifests.current(tmp_path, MODEL)["version"] == "v1"


@pytest.mark.parametrize(
    "bad",
    [
        {"version": "v1", "status": "promoted"},
        {"model": MODEL, "status": "promoted"},
        {"model": MODEL, "version": "v1"},
        {"model": MODEL, "version": "v1", "status": "rolled_back"},
        {"model": MODEL, "version": "", "status": "promoted"},
        {"model": "other", "version": "v1", "status": "promoted"},
        ["not", "a", "dict"],
    ],
)
def test_invalid_manifest_is_refused(tmp_path, bad):
    with pytest.raises(ValueError):
        manifests.record(tmp_path, MODEL, bad)
    assert manifests.history(tmp_path, MODEL) == []
    assert manifests.current(tmp_path, MODEL) is None


def test_model_name_cannot_escape_the_deployments_folder(tmp_path):
    with pytest.raises(ValueError):
        manifests.record(tmp_path, "../x", {"model": "../x", "version": "v", "status": "promoted"})
