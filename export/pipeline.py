"""Records in, a served-ready model version out, in one call: for tests and fixtures.

`build_version` does in-process what `just train` + `just export` do from files. Quick mode
trains tiny models (a second or two on ~1,500 records), skips the learning curve,
importances and plots, and checks parity on whatever held-out rows exist; the version is
still complete: graph, parity fixture and a full manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from export.parity import MIN_PARITY_ROWS
from export.version import export_version
from server.domain.artifact import TrainingData
from server.domain.scan import ScanRecord
from train.data import dataset_from_records, records_digest
from train.training import FitSettings, train_models

__all__ = ["build_version"]


def build_version(
    records: Sequence[ScanRecord], artifacts_dir: Path, *, seed: int = 0, quick: bool = False
) -> Path:
    """Fit, export and point `artifacts_dir/current` at a new version; returns its folder."""
    settings = FitSettings.quick(seed) if quick else FitSettings(seed=seed)
    training_data = TrainingData(
        path="<in-memory records>", sha256=records_digest(records), rows=len(records)
    )
    result = train_models(dataset_from_records(records), training_data, settings)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    exported = export_version(
        result, artifacts_dir, min_parity_rows=0 if quick else MIN_PARITY_ROWS
    )
    return exported.folder
