"""What a model's steps hand each other: typed records of a training set, a trained model and
its evaluation. Each is stored as JSON named by its sha256 (lib/core/artifacts.py) and read
back whole; the datasets a training set names are read only while their bytes still hash to the
sha256 recorded when they were written.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the prediction service never loads pandas
    import pandas as pd

from unified_assets.lib.core import files

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Snapshot:
    """One dataset of a training set: a content-addressed Parquet file of feature rows."""

    path: str
    sha256: str
    rows: int = 0
    window: tuple[str, str] | None = None  # [start, end) as ISO days

    def read(self) -> pd.DataFrame:
        """The rows, refused unless the file still hashes to the recorded sha256."""
        data = files.read_verified(Path(self.path), self.sha256, "dataset")
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data))


@dataclass(frozen=True)
class TrainingSet:
    """The train/validation/test snapshots of a model, with the quality and lineage of the
    data behind them."""

    splits: dict[str, Snapshot]
    input_dq: dict[str, float | None]
    input_dq_min: float | None
    lineage: dict[str, Any]
    as_of: str | None = None  # the retraining's last labelled day; None: the spec's windows
    half_life_days: int = 0  # recency weighting of the training rows; 0: none
    created_at: str = ""
    excluded_days: dict[str, str] = dataclasses.field(default_factory=dict)  # broken feeds
    label_gaps: dict[str, str] = dataclasses.field(default_factory=dict)  # outcomes missing

    def read(self, *names: str) -> dict[str, pd.DataFrame]:
        return {name: self.splits[name].read() for name in names or SPLITS}

    def dataset_hashes(self) -> dict[str, str]:
        """The sha256 of each split: what a model records as the data it was trained on."""
        return {name: snap.sha256 for name, snap in self.splits.items()}


@dataclass(frozen=True)
class ModelRef:
    """A trained model in the artifact store, and the datasets it was trained on."""

    sha256: str
    path: str
    selected_features: list[str]
    best_iteration: int
    training_seconds: float
    datasets: dict[str, str]


@dataclass(frozen=True)
class Evaluation:
    """A model on its test window: metrics, the baseline, the champion on the same rows, the
    slices, and the sample the smoke-test gate scores again."""

    model_sha256: str
    primary_metric: str  # "auc" | "mae"
    primary: float
    metrics: dict[str, Any]
    valid_primary: float
    valid_baseline: float
    v_val: float
    threshold: float | None
    champion: dict[str, Any] | None
    slices: list[dict[str, Any]]
    worst_slice: str | None
    worst_slice_gap: float | None
    smoke_rows: list[int]
    smoke_predictions: list[float]
    evaluated_at: str = ""


HANDOFFS = {"training_set": TrainingSet, "model": ModelRef, "evaluation": Evaluation}
Handoff = TrainingSet | ModelRef | Evaluation


def as_json(record: Handoff) -> dict:
    """The record as the JSON document the artifact store keeps."""
    return dataclasses.asdict(record)


def from_json(kind: type[Handoff], value: dict) -> Handoff:
    """A stored document as its record; a document of another kind is refused by name."""
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise ValueError(f"not a {kind.__name__} hand-off: unexpected {unknown}")
    if kind is TrainingSet:
        splits = {name: Snapshot(**{**ref, "window": tuple(ref["window"])} if ref.get("window")
                                 else ref)
                  for name, ref in value["splits"].items()}
        value = {**value, "splits": splits}
    return kind(**value)
