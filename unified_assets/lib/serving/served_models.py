"""Promoted models held in memory for online scoring, following `deployments/<model>/current.json`.

A served model is the promoted manifest plus its LightGBM booster, loaded from the text artifact
only after its sha256 is verified (never pickle). It scores NumPy rows with one thread, with
categoricals mapped to the codes LightGBM learned in training, so a row scores exactly as the
batch path scores it from a pandas frame. `ModelRegistry.refresh` re-reads the manifests: a
changed one is verified and swapped in whole (one reference assignment); a tampered or missing
artifact is refused, counted, and the old model keeps serving. A request holds the `ServedModel`
it started with, so a swap never changes a request half way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np

from unified_assets.lib.core import artifacts
from unified_assets.lib.deployment import manifests
from unified_assets.lib.models.specs import SPECS, ModelSpec

log = logging.getLogger(__name__)
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 60.0
"""A refused manifest (its artifact missing or tampered) is tried again after 1 s, then 2, 4,
... up to a minute apart, so a repaired file is picked up without a restart."""


@dataclass(frozen=True)
class ServedModel:
    """One promoted model version, ready to score."""

    name: str
    spec: ModelSpec
    manifest: dict
    booster: lgb.Booster
    features: tuple[str, ...]
    categories: dict  # categorical feature -> {category: code}
    residual_of: str | None

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def sha256(self) -> str:
        return self.manifest["artifact"]["sha256"]

    @property
    def threshold(self) -> float | None:
        return self.manifest.get("threshold")

    def unseen(self, row: dict) -> list[str]:
        """The categorical features whose value the model never saw in training."""
        return [c for c, codes in self.categories.items()
                if row.get(c) is not None and str(row[c]) not in codes]

    def matrix(self, rows: list[dict]) -> np.ndarray:
        """Rows of feature values as LightGBM's input: floats, categoricals as training codes
        (an unseen or missing category is NaN, as LightGBM maps it from a pandas frame)."""
        x = np.full((len(rows), len(self.features)), np.nan)
        for i, row in enumerate(rows):
            for j, name in enumerate(self.features):
                value = row.get(name)
                if value is None:
                    continue
                codes = self.categories.get(name)
                if codes is not None:
                    code = codes.get(str(value))
                    if code is not None:
                        x[i, j] = code
                else:
                    x[i, j] = float(value)
        return x

    def predict(self, rows: list[dict]) -> np.ndarray:
        """Scores of the rows (a probability for a classifier), plus the residual base."""
        if not rows:
            return np.array([], dtype=float)
        raw = self.booster.predict(self.matrix(rows), num_threads=1)
        if self.residual_of:
            base = np.array([math.nan if r.get(self.residual_of) is None
                             else float(r[self.residual_of]) for r in rows])
            raw = raw + base
        return raw


def load_served(home: Path, manifest: dict) -> ServedModel:
    """The manifest's model, its artifact verified against its sha256 (raises when it fails)."""
    name = manifest["model"]
    spec = SPECS[name]
    text = artifacts.load_model_text(home, manifest["artifact"]["sha256"])
    booster = lgb.Booster(model_str=text)
    names = tuple(booster.feature_name())
    recorded = manifest.get("features", {})
    categorical = [n for n in names if n in recorded.get("categorical", spec.categorical)]
    stored = booster.pandas_categorical or []
    if len(stored) != len(categorical):
        raise ValueError(f"{name}: model has {len(stored)} category lists for "
                         f"{len(categorical)} categorical features {categorical}")
    categories = {c: {str(v): i for i, v in enumerate(values)}
                  for c, values in zip(categorical, stored, strict=True)}
    return ServedModel(name, spec, manifest, booster, names, categories,
                       recorded.get("residual_of"))


@dataclass
class ModelState:
    """What the registry knows of one model: the one serving, and the last manifest seen."""

    served: ServedModel | None = None
    manifest_sha: str | None = None
    refused: str | None = None  # why the last manifest seen was refused
    promoted_version: str | None = None  # what the last manifest seen names
    retry_at: float = 0.0  # a refused manifest is tried again from then (monotonic seconds)
    retry_s: float = 0.0  # the wait before that try, doubling up to RETRY_MAX_S


@dataclass
class ModelRegistry:
    """Every model of SPECS, following its current.json."""

    home: Path
    on_reload: Callable[[str, ServedModel], None] = lambda name, served: None
    on_refused: Callable[[str, str, str], None] = lambda name, reason, manifest_sha: None
    states: dict = field(default_factory=lambda: {name: ModelState() for name in SPECS})
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, name: str) -> ServedModel | None:
        return self.states[name].served

    def promoted(self) -> list[str]:
        """Models that have a promoted manifest."""
        return [n for n in SPECS if manifests.current_path(self.home, n).exists()]

    def ready(self) -> tuple[bool, dict]:
        """True when every promoted model is served at the version its manifest names; else
        False, with each model that is not and why (an older version serving, or none)."""
        why = {}
        for name in self.promoted():
            state = self.states[name]
            if state.served is None:
                why[name] = state.refused or "not loaded yet"
            elif state.refused:
                why[name] = (f"serving {state.served.version[:12]}, promoted "
                             f"{(state.promoted_version or '?')[:12]} refused: {state.refused}")
        return not why, why

    def refresh(self) -> None:
        """Re-read every manifest; load and swap in what changed (one call at a time)."""
        with self._lock:
            for name in SPECS:
                self._refresh(name)

    def _refresh(self, name: str) -> None:
        path = manifests.current_path(self.home, name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        sha = hashlib.sha256(data).hexdigest()
        state = self.states[name]
        if sha == state.manifest_sha and (state.refused is None
                                          or time.monotonic() < state.retry_at):
            return  # nothing new, or a refused one whose next try has not come
        if sha != state.manifest_sha:
            state.retry_s = 0.0
        state.manifest_sha = sha
        try:
            manifest = manifests.current(self.home, name)
            state.promoted_version = manifest.get("version")
            if state.served is not None and manifest["version"] == state.served.version:
                served = dataclasses.replace(state.served, manifest=manifest)
            else:
                served = load_served(self.home, manifest)
        except (OSError, ValueError, KeyError, artifacts.ArtifactIntegrityError,
                lgb.basic.LightGBMError) as exc:
            first = state.retry_s == 0.0
            state.refused = f"{type(exc).__name__}: {exc}"
            state.retry_s = min(RETRY_MAX_S, max(RETRY_FIRST_S, state.retry_s * 2))
            state.retry_at = time.monotonic() + state.retry_s
            if first:  # once per manifest; its retries log nothing until one succeeds
                log.error("refused %s manifest %s: %s (trying again with backoff)", name, path,
                          state.refused)
                self.on_refused(name, state.refused, sha)
            return
        changed = state.served is None or state.served.version != served.version
        state.served, state.refused, state.retry_s = served, None, 0.0
        if changed:
            log.info("%s now serves %s", name, served.version[:12])
            self.on_reload(name, served)
