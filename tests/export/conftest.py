"""Tiny real models, trained once per session in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from export.version import ExportedVersion, export_version
from server.domain.artifact import TrainingData
from server.domain.scan import ScanRecord
from train.data import dataset_from_records, records_digest
from train.generate import generate_records
from train.training import FitSettings, TrainResult, train_models


@pytest.fixture(scope="session")
def quick_records() -> list[ScanRecord]:
    return generate_records(1500, seed=11)


@pytest.fixture(scope="session")
def quick_result(quick_records: list[ScanRecord]) -> TrainResult:
    data = TrainingData(path="<test>", sha256=records_digest(quick_records), rows=1500)
    return train_models(dataset_from_records(quick_records), data, FitSettings.quick(seed=11))


@pytest.fixture(scope="session")
def exported(
    quick_result: TrainResult, tmp_path_factory: pytest.TempPathFactory
) -> ExportedVersion:
    """One version exported into a fresh artifacts directory, `current` pointing at it."""
    return export_version(quick_result, tmp_path_factory.mktemp("artifacts"), min_parity_rows=0)


@pytest.fixture(scope="session")
def built_artifacts(exported: ExportedVersion) -> Path:
    """The artifacts directory holding the exported version."""
    return exported.folder.parent.parent
