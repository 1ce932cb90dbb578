"""The content-addressed model store: round trip, idempotence, integrity, snapshots."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from unified_assets.lib.core import artifacts

MODEL = "tree\nversion=v4\nnum_class=1\nfeature_names=a b c\n\nTree=0\nleaf_value=0.5 -0.25\n"


def test_save_then_load_round_trips(tmp_path):
    ref = artifacts.save_model(tmp_path, MODEL, {"model": "late_arrival", "auc": 0.71})
    assert ref.sha256 == hashlib.sha256(MODEL.encode()).hexdigest()
    assert ref.model_path == tmp_path / "artifacts" / "models" / f"{ref.sha256}.txt"
    assert ref.metadata_path == ref.model_path.with_suffix(".json")
    assert artifacts.load_model_text(tmp_path, ref.sha256) == MODEL
    meta = artifacts.load_metadata(tmp_path, ref.sha256)
    assert meta["model"] == "late_arrival" and meta["auc"] == 0.71
    assert meta["sha256"] == ref.sha256 and meta["saved_at"]
    # Nothing but the two files is left behind (no temp files).
    assert sorted(p.name for p in ref.model_path.parent.iterdir()) == sorted(
        [ref.model_path.name, ref.metadata_path.name]
    )


def test_saving_the_same_model_twice_keeps_one_file_and_its_first_metadata(tmp_path):
    first = artifacts.save_model(tmp_path, MODEL, {"run": 1})
    model_bytes, meta_bytes = first.model_path.read_bytes(), first.metadata_path.read_bytes()
    second = artifacts.save_model(tmp_path, MODEL, {"run": 2})
    assert second == first
    assert len(list(first.model_path.parent.glob("*.txt"))) == 1
    assert first.model_path.read_bytes() == model_bytes
    assert first.metadata_path.read_bytes() == meta_bytes
    assert artifacts.load_metadata(tmp_path, first.sha256)["run"] == 1


def test_a_different_model_gets_a_different_address(tmp_path):
    one = artifacts.save_model(tmp_path, MODEL, {})
    two = artifacts.save_model(tmp_path, MODEL + "Tree=1\n", {})
    assert one.sha256 != two.sha256
    assert artifacts.load_model_text(tmp_path, two.sha256).endswith("Tree=1\n")


def test_a_tampered_model_fails_its_integrity_check(tmp_path):
    ref = artifacts.save_model(tmp_path, MODEL, {})
    data = bytearray(ref.model_path.read_bytes())
    data[10] ^= 0x01  # one byte changed
    ref.model_path.write_bytes(bytes(data))
    with pytest.raises(artifacts.ArtifactIntegrityError) as failure:
        artifacts.load_model_text(tmp_path, ref.sha256)
    message = str(failure.value)
    assert str(ref.model_path) in message and ref.sha256 in message
    assert hashlib.sha256(bytes(data)).hexdigest() in message
    # Saving again does not silently overwrite the corrupt file.
    with pytest.raises(artifacts.ArtifactIntegrityError):
        artifacts.save_model(tmp_path, MODEL, {})


def test_a_model_without_metadata_is_refused(tmp_path):
    ref = artifacts.save_model(tmp_path, MODEL, {})
    ref.metadata_path.unlink()
    with pytest.raises(artifacts.ArtifactIntegrityError, match="metadata"):
        artifacts.load_model_text(tmp_path, ref.sha256)


def test_stale_metadata_without_a_model_is_replaced_by_the_next_save(tmp_path):
    sha = hashlib.sha256(MODEL.encode()).hexdigest()
    meta = artifacts.metadata_path(tmp_path, sha)
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"sha256": sha, "run": "crashed"}))
    artifacts.save_model(tmp_path, MODEL, {"run": "good"})
    assert artifacts.load_metadata(tmp_path, sha)["run"] == "good"
    assert artifacts.load_model_text(tmp_path, sha) == MODEL


def test_missing_model_names_its_path(tmp_path):
    sha = "0" * 64
    with pytest.raises(FileNotFoundError, match=sha):
        artifacts.load_model_text(tmp_path, sha)
    with pytest.raises(ValueError):
        artifacts.load_model_text(tmp_path, "../../etc/passwd")


def test_snapshot_frame_is_deterministic(tmp_path):
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"], "c": [0.5, 1.5, None]})
    path, sha = artifacts.snapshot_frame(tmp_path, frame, "train")
    again_path, again_sha = artifacts.snapshot_frame(tmp_path, frame.copy(), "train")
    assert (again_path, again_sha) == (path, sha)
    assert path == tmp_path / "artifacts" / "datasets" / f"train-{sha}.parquet"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    _, other = artifacts.snapshot_frame(tmp_path, frame.assign(a=[1, 2, 4]), "train")
    assert other != sha


def test_write_new_never_overwrites(tmp_path):
    target = tmp_path / "sub" / "file.json"
    assert artifacts.write_new(target, b"first")
    assert not artifacts.write_new(target, b"second")
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]


def test_versions():
    assert artifacts.code_version()
    versions = artifacts.library_versions()
    assert set(versions) == {"lightgbm", "duckdb", "pandas", "numpy", "dagster", "pandera"}
    assert versions["pandas"] == pd.__version__


def test_a_model_stored_before_references_gets_one_later_and_keeps_its_metadata(tmp_path):
    ref = artifacts.save_model(tmp_path, MODEL, {"note": "old code"})
    assert artifacts.load_reference(tmp_path, ref.sha256) is None
    again = artifacts.save_model(tmp_path, MODEL, {"note": "new code"})
    assert artifacts.save_reference(tmp_path, again.sha256, {"rows": 10})
    assert artifacts.load_reference(tmp_path, ref.sha256) == {"rows": 10}
    assert artifacts.load_metadata(tmp_path, ref.sha256)["note"] == "old code"
    # written once: a later save leaves the first reference alone
    assert not artifacts.save_reference(tmp_path, ref.sha256, {"rows": 99})
    assert artifacts.load_reference(tmp_path, ref.sha256) == {"rows": 10}
