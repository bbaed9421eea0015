"""Tiny real models, trained once per session in a temporary directory, and lineages of
versions built from them."""

from __future__ import annotations

import json
import shutil
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


def _copy_as(source: Path, artifacts: Path, name: str, parent: str | None) -> None:
    """A copy of the version at `source` under another name and parent (files unchanged)."""
    dest = artifacts / "models" / name
    shutil.copytree(source, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest.update(version=name, parent_version=parent, created_at=f"{name[:15]}Z")
    (dest / "manifest.json").write_text(json.dumps(manifest))


LINEAGE = tuple(f"2026010{i}T000000Z-0000000{i}" for i in range(1, 5))


@pytest.fixture
def lineage(tmp_path: Path, exported: ExportedVersion) -> Path:
    """An artifacts directory with four versions, each the parent of the next; current
    names the newest. They share the exported version's files, so each validates."""
    artifacts = tmp_path / "artifacts"
    parent = None
    for name in LINEAGE:
        _copy_as(exported.folder, artifacts, name, parent)
        parent = name
    (artifacts / "current").write_text(LINEAGE[-1] + "\n")
    return artifacts
