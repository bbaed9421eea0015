"""manifest.json: complete, round-trips through msgspec, and its reference histograms."""

from __future__ import annotations

import hashlib
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from export.manifest import (
    decode_manifest,
    encode_manifest,
    read_manifest,
    reference_distribution,
    version_name,
)
from export.version import ExportedVersion, export_version
from server.domain.artifact import CURRENT_FILE, MANIFEST_FILE, MODEL_FILE, MODEL_OUTPUTS
from server.domain.features import FEATURE_NAMES, FEATURE_SPEC, feature_spec_digest
from train.training import TrainResult


def _current_folder(artifacts: Path) -> Path:
    return artifacts / "models" / (artifacts / CURRENT_FILE).read_text().strip()


def test_written_manifest_decodes_to_what_was_written(exported: ExportedVersion) -> None:
    """msgspec decoding manifest.json gives back the Manifest the export wrote."""
    path = exported.folder / MANIFEST_FILE
    assert read_manifest(path) == exported.manifest
    assert decode_manifest(encode_manifest(exported.manifest), path) == exported.manifest


def test_manifest_holds_every_required_field(built_artifacts: Path) -> None:
    """The keys the issue lists, the contract, and per-file hashes that match the files."""
    folder = _current_folder(built_artifacts)
    m = read_manifest(folder / MANIFEST_FILE)
    for group, key in [
        ("result_count", "mae"),
        ("result_count", "oracle_mae"),
        ("result_count", "coverage_90"),
        ("duration_s", "mae"),
        ("duration_s", "oracle_mae"),
        ("duration_s", "coverage_90"),
        ("empty", "roc_auc"),
    ]:
        assert np.isfinite(m.metrics[group][key]), (group, key)
    assert {"max_abs_diff", "max_rel_diff", "rows"} <= set(m.parity)
    assert m.version == folder.name
    assert m.feature_spec == list(FEATURE_SPEC)
    assert m.feature_spec_sha256 == feature_spec_digest()
    assert m.output_names == list(MODEL_OUTPUTS)
    assert set(m.reference) == set(FEATURE_NAMES) | set(MODEL_OUTPUTS)
    assert m.files[MODEL_FILE] == hashlib.sha256((folder / MODEL_FILE).read_bytes()).hexdigest()
    assert all((folder / name).is_file() for name in m.files)
    assert {"scikit-learn", "skl2onnx", "onnxruntime", "onnx", "numpy"} <= set(m.packages)
    assert m.opsets == {"ai.onnx": 18, "ai.onnx.ml": 3}
    assert m.training_data.rows == 1500
    assert m.calibration
    assert any(k.startswith("result_count.widening") for k in m.conformal)


def test_a_new_version_names_the_previous_one_as_parent(
    quick_result: TrainResult, built_artifacts: Path, tmp_path: Path
) -> None:
    """Exporting again makes a second folder whose parent is the version that was current."""
    first = (built_artifacts / CURRENT_FILE).read_text().strip()
    artifacts = Path(shutil.copytree(built_artifacts, tmp_path / "a"))
    folder = export_version(quick_result, artifacts, min_parity_rows=0).folder
    assert folder.name != first
    assert (artifacts / CURRENT_FILE).read_text().strip() == folder.name
    assert read_manifest(folder / MANIFEST_FILE).parent_version == first


def test_export_tops_up_parity_rows_with_generated_scans(
    quick_result: TrainResult, tmp_path: Path
) -> None:
    """With fewer held-out rows than asked, fresh generated rows make up the difference."""
    held_out = len(quick_result.splits.calibration) + len(quick_result.splits.test)
    parity = export_version(quick_result, tmp_path, min_parity_rows=held_out + 250).parity
    assert parity.rows == held_out + 250
    assert parity.passed


def test_version_name_is_time_then_model_hash() -> None:
    """`20261126T040512Z-1a2b3c4d`: sortable by time, eight hex digits of the model."""
    name = version_name(datetime(2026, 11, 26, 4, 5, 12, tzinfo=UTC), "1a2b3c4d" + "0" * 56)
    assert name == "20261126T040512Z-1a2b3c4d"
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", name)


def test_binary_column_gets_one_bin_per_value() -> None:
    """A 0/1 column: two bins centred on 0 and 1, shares equal to the value frequencies."""
    ref = reference_distribution([0, 1, 1, 1])
    assert ref.edges == [-0.5, 0.5, 1.5]
    assert ref.shares == [0.25, 0.75]


def test_continuous_column_gets_quantile_bins_summing_to_one() -> None:
    """Many distinct values: ten quantile bins of about a tenth each."""
    ref = reference_distribution(np.random.default_rng(0).lognormal(size=5000))
    assert len(ref.edges) == len(ref.shares) + 1 == 11
    assert sum(ref.shares) == pytest.approx(1.0)
    assert max(ref.shares) < 0.12
    assert ref.edges == sorted(ref.edges)


def test_point_mass_column_keeps_its_mass_in_one_bin() -> None:
    """A column that is mostly 0 (a filter left off) still yields valid, increasing edges."""
    values = np.concatenate([np.zeros(800), np.random.default_rng(1).uniform(1, 5, 200)])
    ref = reference_distribution(values)
    assert ref.edges == sorted(set(ref.edges))
    assert ref.shares[0] >= 0.8
    assert sum(ref.shares) == pytest.approx(1.0)


def test_constant_column_is_one_bin() -> None:
    """A constant column is one bin around its value."""
    assert reference_distribution([3.0] * 10).shares == [1.0]
