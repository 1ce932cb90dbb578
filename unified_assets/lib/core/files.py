"""Files the platform writes and reads back: written whole or not at all, and read only while
their bytes still hash to the sha256 recorded when they were written."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


class ArtifactIntegrityError(RuntimeError):
    """A stored file does not match its content address, or lacks its metadata."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """A file's sha256, read in chunks (a snapshot never has to fit in memory to be checked)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_verified(path: Path, sha256: str, what: str) -> bytes:
    """A stored file's bytes, refused unless they still hash to `sha256`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    data = path.read_bytes()
    check(path, sha256, sha256_bytes(data), what)
    return data


def check(path: Path, expected: str, actual: str, what: str) -> None:
    """Refuse a file whose bytes hash to `actual` where `expected` was recorded."""
    if actual != expected:
        raise ArtifactIntegrityError(
            f"{what} {path} failed its integrity check: expected sha256 {expected}, "
            f"actual {actual}"
        )
