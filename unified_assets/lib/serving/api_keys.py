"""API keys for the prediction service: a client sends `Authorization: Bearer <key>`; the
service keeps only each key's sha256, read from a file of digests (`online/api_keys` in the
home folder by default; one hex digest a line, `#` comments). `unified-assets api-key add`
makes a key, prints it once and appends its digest: the key itself is never stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path

from unified_assets.lib.core.files import write_atomic

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def default_path(home: Path) -> Path:
    return Path(home) / "online" / "api_keys"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load(path: Path) -> frozenset[str]:
    """The digests in the file (none when it does not exist); a malformed line is an error."""
    path = Path(path)
    if not path.exists():
        return frozenset()
    found = set()
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if not _DIGEST.match(line):
            raise ValueError(f"{path.name} line {number}: not a sha256 hex digest")
        found.add(line)
    return frozenset(found)


def add(path: Path) -> str:
    """A new key: its digest appended to the file, the key returned (shown once)."""
    key = secrets.token_urlsafe(32)
    path = Path(path)
    old = path.read_text("utf-8") if path.exists() else "# sha256 of each API key serve accepts\n"
    write_atomic(path, (old + digest(key) + "\n").encode())
    path.chmod(0o600)
    return key


def allowed(digests: frozenset[str], authorization: str | None) -> bool:
    """Whether an `Authorization` header carries a known key (compared in constant time)."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return False
    given = digest(key.strip())
    return any(hmac.compare_digest(given, known) for known in digests)
