"""The model store: immutable, content-addressed files under `$UNIFIED_ASSETS_HOME/artifacts/`.

A model is LightGBM's text format, named by the sha256 of its UTF-8 bytes
(`artifacts/models/<sha>.txt`), with its metadata beside it (`artifacts/models/<sha>.json`).
Dataset snapshots are Parquet files named by the sha256 of their bytes
(`artifacts/datasets/<kind>-<sha>.parquet`). What one step of a model's chain hands the next
(a JSON document) is named by the sha256 of its bytes under the producing asset's key
(`artifacts/handoffs/<asset key path>/<sha>.json`). Nothing here is ever overwritten, and every
model and hand-off is verified against its name before it is handed out. Nothing is loaded with
pickle.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import re
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: reading a manifest loads neither
    import lightgbm as lgb
    import pandas as pd

import numpy as np

from unified_assets.lib.core.files import (
    ArtifactIntegrityError,
    read_verified,
    sha256_bytes,
    write_atomic,
)

ARTIFACTS = "artifacts"
MODELS = "models"
DATASETS = "datasets"
HANDOFFS = "handoffs"
TRACKED_LIBRARIES = ("lightgbm", "duckdb", "pandas", "numpy", "dagster", "pandera")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")



@dataclass(frozen=True)
class ArtifactRef:
    sha256: str
    model_path: Path
    metadata_path: Path


def artifacts_root(home: Path) -> Path:
    return Path(home) / ARTIFACTS



def _checked_sha(sha256: str) -> str:
    """The sha as given, once it is known to be 64 lowercase hex digits (never a path)."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256 (64 lowercase hex digits): {sha256!r}")
    return sha256


def model_path(home: Path, sha256: str) -> Path:
    return artifacts_root(home) / MODELS / f"{_checked_sha(sha256)}.txt"


def metadata_path(home: Path, sha256: str) -> Path:
    return artifacts_root(home) / MODELS / f"{_checked_sha(sha256)}.json"


def _ref(home: Path, sha256: str) -> ArtifactRef:
    return ArtifactRef(sha256, model_path(home, sha256), metadata_path(home, sha256))


def _dumps(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def publish_new(tmp: Path, target: Path) -> bool:
    """Move the finished temp file `tmp` to `target` unless `target` exists; never overwrite.

    The move is a hard link (atomic, and it fails when the target exists, unlike a rename)
    followed by removing the temp name. Returns False, and drops `tmp`, when `target` existed.
    """
    try:
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _temp_name(target: Path) -> Path:
    """A temp name beside `target`, unique to this call (hidden, so listings skip it)."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex}")


def write_new(target: Path, data: bytes) -> bool:
    """Write `data` to `target` via a temp file, only if `target` does not exist yet.

    Returns True when written, False when `target` already existed (it is left untouched).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(target)
    tmp.write_bytes(data)
    return publish_new(tmp, target)


def save_model(home: Path, model_text: str, metadata: dict) -> ArtifactRef:
    """Store a LightGBM text model under its sha256, with `metadata` beside it.

    Idempotent: a model already stored with the same bytes is left as it is, with its
    metadata, and the same reference is returned. The metadata is written first and the model
    last, both via temp name and atomic rename, so a model file never exists without metadata.
    """
    if not isinstance(model_text, str):
        raise TypeError(f"model_text must be a str (LightGBM text format), not {type(model_text)}")
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, not {type(metadata)}")
    data = model_text.encode("utf-8")
    sha = sha256_bytes(data)
    ref = _ref(home, sha)
    if ref.model_path.exists():
        stored = sha256_bytes(ref.model_path.read_bytes())
        if stored != sha:
            raise ArtifactIntegrityError(
                f"stored model {ref.model_path} is corrupt: expected sha256 {sha}, "
                f"actual {stored}; it is not overwritten, remove it by hand"
            )
        if ref.metadata_path.exists():
            return ref
        # Only reachable when someone removed the metadata: restore it, touch nothing else.
    full = metadata | {"sha256": sha, "saved_at": _now()}
    # A metadata file without its model is harmless (a crashed save) and may be replaced.
    write_atomic(ref.metadata_path, (_dumps(full) + "\n").encode("utf-8"))
    write_new(ref.model_path, data)
    return ref


def reference_path(home: Path, sha256: str) -> Path:
    return artifacts_root(home) / MODELS / f"{_checked_sha(sha256)}.reference.json"


def save_reference(home: Path, sha256: str, reference: dict) -> bool:
    """Store what a model was trained on (its drift reference) beside it, once.

    A file of its own, not part of the metadata: a model stored before references existed gets
    one when it is trained again, without its metadata being rewritten.
    """
    return write_new(reference_path(home, sha256), (_dumps(reference) + "\n").encode("utf-8"))


def load_reference(home: Path, sha256: str) -> dict | None:
    """A model's drift reference, or None when it has none."""
    path = reference_path(home, sha256)
    return json.loads(path.read_text("utf-8")) if path.exists() else None


def load_reference_with_sample(home: Path, sha256: str, key: str) -> dict | None:
    """A model's drift reference with its sample rows (the multivariate signal's reference,
    sha256 verified) attached under `key`; None when the model has no reference."""
    reference = load_reference(home, sha256)
    sample = (reference or {}).get("sample")
    if sample:
        path = artifacts_root(home) / sample["file"]
        data = read_verified(path, sample["sha256"], "drift sample")
        import pandas as pd

        reference[key] = pd.read_parquet(io.BytesIO(data))
    return reference


def load_metadata(home: Path, sha256: str) -> dict:
    """The metadata stored beside a model."""
    path = metadata_path(home, sha256)
    if not path.exists():
        raise FileNotFoundError(f"model metadata not found: {path}")
    metadata = json.loads(path.read_text("utf-8"))
    if metadata.get("sha256") != sha256:
        raise ArtifactIntegrityError(
            f"metadata {path} names sha256 {metadata.get('sha256')!r}, expected {sha256}"
        )
    return metadata



def load_model_text(home: Path, sha256: str) -> str:
    """The model's text, verified against its sha256 and checked to have its metadata."""
    path = model_path(home, sha256)
    data = read_verified(path, sha256, "model artifact")
    meta = metadata_path(home, sha256)
    if not meta.exists():
        raise ArtifactIntegrityError(f"model artifact {path} has no metadata file {meta}")
    return data.decode("utf-8")


def load_model(home: Path, sha256: str) -> lgb.Booster:
    """A model from the store, verified by sha256 (LightGBM's text format, never unpickled)."""
    import lightgbm as lgb

    return lgb.Booster(model_str=load_model_text(home, sha256))


def snapshot_frame(home: Path, frame: pd.DataFrame, kind: str) -> tuple[Path, str]:
    """Store `frame` as Parquet named by the sha256 of the file; returns (path, sha256).

    The same frame gives the same file and sha; an existing snapshot is never rewritten.
    """
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise ValueError(f"kind must be letters, digits, '_', '.' or '-', not {kind!r}")
    folder = artifacts_root(home) / DATASETS
    folder.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(folder / f"{kind}.parquet")
    try:
        frame.to_parquet(tmp, engine="pyarrow", index=False)
        sha = sha256_bytes(tmp.read_bytes())
        target = folder / f"{kind}-{sha}.parquet"
        publish_new(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target, sha


def handoff_path(home: Path, key_path: Sequence[str], sha256: str) -> Path:
    """Where the hand-off with this sha256, produced by the asset `key_path`, is stored."""
    parts = list(key_path)
    if not parts or not all(isinstance(p, str) and _KIND.fullmatch(p) for p in parts):
        raise ValueError(f"asset key path must be letters, digits, '_', '.' or '-': {parts!r}")
    return artifacts_root(home).joinpath(HANDOFFS, *parts, f"{_checked_sha(sha256)}.json")


def _plain(value: object) -> object:
    """JSON for the few non-JSON values a hand-off holds: NumPy scalars and dates."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"a hand-off holds JSON values only, not {type(value).__name__}: {value!r}")


def save_handoff(home: Path, key_path: Sequence[str], value: dict) -> tuple[Path, str]:
    """Store a step's hand-off as JSON named by the sha256 of its bytes; returns (path, sha256).

    The same document gives the same file; an existing file is never rewritten (it is checked
    instead, and a corrupt one is refused).
    """
    if not isinstance(value, dict):
        raise TypeError(f"a hand-off must be a dict, not {type(value).__name__}")
    data = (json.dumps(value, indent=2, sort_keys=True, default=_plain) + "\n").encode("utf-8")
    sha = sha256_bytes(data)
    path = handoff_path(home, key_path, sha)
    if not write_new(path, data):
        load_handoff(home, key_path, sha)  # already stored: it must still be those bytes
    return path, sha


def load_handoff(home: Path, key_path: Sequence[str], sha256: str) -> dict:
    """A stored hand-off, refused unless its bytes still hash to `sha256`."""
    return json.loads(read_verified(handoff_path(home, key_path, sha256), sha256, "hand-off"))


def code_version() -> str:
    """`git rev-parse HEAD` of this file's repository, else the installed package version."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        head = done.stdout.strip()
        if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", head):
            return head
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"unified_assets=={importlib.metadata.version('unified_assets')}"
    except importlib.metadata.PackageNotFoundError:
        return "unified_assets==unknown"


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a model's behaviour depends on."""
    versions = {}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
