"""The drift calibration export measures: design effects that are 1 for independent rows
and the cluster size for clustered ones, a calibration and the thresholds it gives written
into every version whose training rows allow it (absent, for the server's fallback, when
they do not), and the same added in place to a version exported without them, its model
untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
import numpy as np
import pytest

from export.drift import (
    FIRST_WINDOW_ROWS,
    MIN_WINDOWS,
    ExportError,
    add_thresholds,
    autocorrelation_time,
    drift_calibration,
    main,
    recalibrate_version,
    user_design_effect,
    window_design_effect,
)
from export.version import ExportedVersion, export_version
from server.domain.artifact import TrainingData
from server.errors import ArtifactError
from server.inference.artifacts import verify_version
from server.monitoring.drift import Column, Reference, calibrate
from train.data import dataset_from_records, records_digest
from train.generate import generate_records, write_history
from train.training import FitSettings, train_models

BINS = 5


def test_independent_rows_have_a_design_effect_of_one() -> None:
    """Rows drawn independently: window, user and autocorrelation design effects near 1."""
    rng = np.random.default_rng(1)
    bins = rng.integers(0, BINS, 64 * 256)
    users = rng.integers(0, 200, bins.size)
    assert window_design_effect(bins, BINS, 256) == pytest.approx(1.0, abs=0.25)
    assert user_design_effect(bins, BINS, users) == pytest.approx(1.0, abs=0.25)
    assert autocorrelation_time(bins, BINS) == pytest.approx(1.0, abs=0.25)


def test_rows_in_runs_have_the_run_length_as_design_effect() -> None:
    """Runs of 16 equal rows (one level a day, one user's saved scan): deff ~ 16."""
    rng = np.random.default_rng(2)
    bins = np.repeat(rng.integers(0, BINS, 4096), 16)
    users = np.repeat(np.arange(4096), 16)
    assert window_design_effect(bins, BINS, 256) == pytest.approx(16.0, rel=0.2)
    assert user_design_effect(bins, BINS, users) == pytest.approx(16.0, rel=0.2)
    assert autocorrelation_time(bins, BINS) == pytest.approx(16.0, rel=0.2)


def _reference() -> Reference:
    column = Column(
        name="x", kind="numeric", edges=tuple(float(e) for e in range(BINS + 1)), shares=(0.2,) * 5
    )
    return Reference(version="v", columns=(column,))


def test_window_sizes_double_while_the_history_holds_enough_windows() -> None:
    """Sizes 256, 512, ... with at least MIN_WINDOWS windows each; too short: None."""
    n = MIN_WINDOWS * FIRST_WINDOW_ROWS * 4  # 8 windows of 1,024 rows
    rng = np.random.default_rng(3)
    history = {"x": rng.uniform(0, BINS, n)}
    calibration = drift_calibration(_reference(), history, rng.integers(0, 50, n))
    assert calibration is not None
    assert calibration.window_rows == [256, 512, 1024]
    assert calibration.windows == [n // 256, n // 512, n // 1024]
    assert (calibration.history_rows, calibration.users) == (n, 50)
    assert len(calibration.columns["x"].windows) == 3
    short = MIN_WINDOWS * FIRST_WINDOW_ROWS - 1
    assert drift_calibration(_reference(), {"x": history["x"][:short]}, np.zeros(short)) is None


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExportedVersion, Path]:
    """A quick model on 4,000 scans (about 2,400 training rows: windows of 256 rows) and
    the history file it was trained on."""
    records = generate_records(4000, seed=21)
    folder = tmp_path_factory.mktemp("drift")
    history, _ = write_history(records, folder / "history.jsonl")
    data = TrainingData(path=str(history), sha256=records_digest(records), rows=len(records))
    result = train_models(dataset_from_records(records), data, FitSettings.quick(seed=0))
    return export_version(result, folder / "artifacts", min_parity_rows=0), history


def test_an_export_ships_the_calibration_of_its_training_rows(
    calibrated: tuple[ExportedVersion, Path],
) -> None:
    """Every column that can alarm has design effects; the clock columns have none."""
    exported, _ = calibrated
    drift = exported.manifest.drift
    assert drift is not None
    assert drift.history_rows == int(exported.manifest.metrics["training"]["rows_train"])
    assert drift.window_rows[0] == FIRST_WINDOW_ROWS
    names = set(exported.manifest.reference) - {"weekday", "market_open", "minutes_since_open"}
    assert set(drift.columns) == names
    reference = Reference.of(exported.manifest)
    assert reference.calibration is not None
    assert all(c.design is not None for c in reference.columns if c.alarms)


def test_an_export_ships_the_thresholds_a_server_would_calibrate(
    calibrated: tuple[ExportedVersion, Path],
) -> None:
    """One set per window size the server calibrates at (here only 256 rows: the largest
    design window), equal to what it would compute, under the method it would name."""
    exported, _ = calibrated
    reference = Reference.of(exported.manifest)
    shipped = exported.manifest.drift_thresholds
    assert shipped is not None
    assert shipped.method == reference.method
    assert [t.rows for t in shipped.windows] == [256]
    assert reference.calibration_rows(100_000) == 256
    assert shipped.windows[0] == calibrate(reference, 256)


def test_a_small_training_split_ships_no_calibration(exported: ExportedVersion) -> None:
    """1,500 scans (under 2,048 training rows): no calibration and no thresholds (their
    sizes would have no end), so the server falls back and calibrates them itself."""
    assert exported.manifest.drift is None
    assert exported.manifest.drift_thresholds is None
    assert Reference.of(exported.manifest).calibration is None


def test_a_version_without_calibration_gets_the_same_one_in_place(
    calibrated: tuple[ExportedVersion, Path],
) -> None:
    """The field removed from the manifest, then added again from the history file: the
    same calibration as at export, and every other file byte for byte as it was."""
    exported, history = calibrated
    folder = exported.folder
    manifest_path = folder / "manifest.json"
    document = json.loads(manifest_path.read_text())
    del document["drift"], document["drift_thresholds"]
    manifest_path.write_text(json.dumps(document, indent=2))
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    updated = recalibrate_version(folder, history, seed=0)
    assert msgspec.to_builtins(updated.drift) == msgspec.to_builtins(exported.manifest.drift)
    assert updated.drift_thresholds == exported.manifest.drift_thresholds
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert {n for n in after if after[n] != before[n]} == {"manifest.json"}
    written = json.loads(manifest_path.read_text())
    added = {"drift", "drift_thresholds"}
    assert {k: v for k, v in written.items() if k not in added} == document


def test_thresholds_alone_are_added_from_the_manifest(
    calibrated: tuple[ExportedVersion, Path], tmp_path: Path
) -> None:
    """`--thresholds-only`: the thresholds from the manifest's own calibration, with no
    history, the rest of the manifest as written; refused, naming what is missing, for a
    manifest without a calibration."""
    exported, _ = calibrated
    folder = tmp_path / "models" / exported.manifest.version
    shutil.copytree(exported.folder, folder)
    (tmp_path / "current").write_text(exported.manifest.version + "\n")
    document = json.loads((folder / "manifest.json").read_text())
    del document["drift_thresholds"]
    (folder / "manifest.json").write_text(json.dumps(document))
    assert main(["--artifacts", str(tmp_path), "--thresholds-only"]) == 0
    written = json.loads((folder / "manifest.json").read_text())
    assert {k: v for k, v in written.items() if k != "drift_thresholds"} == document
    assert add_thresholds(folder).drift_thresholds == exported.manifest.drift_thresholds
    del document["drift"]
    (folder / "manifest.json").write_text(json.dumps(document))
    with pytest.raises(ExportError, match="no drift calibration: expected one first"):
        add_thresholds(folder)


def test_recalibration_refuses_another_history_or_seed(
    calibrated: tuple[ExportedVersion, Path], tmp_path: Path
) -> None:
    """A history the version was not trained on, or a split that is not its own: refused."""
    exported, history = calibrated
    other, _ = write_history(generate_records(300, seed=5), tmp_path / "other.jsonl")
    with pytest.raises(ExportError, match="is not the training data"):
        recalibrate_version(exported.folder, other)
    with pytest.raises(ExportError, match="expected the seed it was trained with"):
        recalibrate_version(exported.folder, history, seed=7)


def test_a_malformed_calibration_fails_the_manifest_check(
    calibrated: tuple[ExportedVersion, Path], tmp_path: Path
) -> None:
    """Design effects that do not match the window sizes: the version is refused at the
    manifest step of the one verification, naming the field."""
    exported, _ = calibrated
    folder = tmp_path / "models" / exported.manifest.version
    shutil.copytree(exported.folder, folder)
    (tmp_path / "current").write_text(exported.manifest.version + "\n")
    document = json.loads((folder / "manifest.json").read_text())
    document["drift"]["columns"]["p_empty"]["windows"].append(1.0)
    (folder / "manifest.json").write_text(json.dumps(document))
    with pytest.raises(ArtifactError, match="windows must have one per window size") as caught:
        verify_version(tmp_path)
    assert caught.value.check == "manifest"


def test_the_command_calibrates_current_or_says_why_not(
    calibrated: tuple[ExportedVersion, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`just drift-calibrate`: 0 for the version current names; 1 and one line on stderr
    for an artifacts directory without a pointer."""
    exported, history = calibrated
    artifacts = exported.folder.parent.parent
    assert main(["--artifacts", str(artifacts), "--history", str(history)]) == 0
    out = capsys.readouterr().out
    assert "drift calibration kish1" in out
    assert "drift thresholds: [256] rows" in out
    assert main(["--artifacts", str(tmp_path), "--history", str(history)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    assert len(err.splitlines()) == 1
