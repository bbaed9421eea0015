"""build_version and the export CLI: records or a training bundle in, a ready version out."""

from __future__ import annotations

from pathlib import Path

import pytest

from export.onnx import main as export_main
from export.pipeline import build_version
from export.validate import main as validate_main
from server.domain.artifact import CURRENT_FILE, MANIFEST_FILE
from server.domain.scan import ScanRecord
from train.fit import main as fit_main
from train.generate import generate_records, write_history


def test_build_version_quick_gives_a_current_valid_version(
    quick_records: list[ScanRecord], tmp_path: Path
) -> None:
    """In-process quick build: the folder is current and passes validation (targets aside)."""
    folder = build_version(quick_records, tmp_path / "artifacts", seed=3, quick=True)
    assert (tmp_path / "artifacts" / CURRENT_FILE).read_text().strip() == folder.name
    assert (folder / MANIFEST_FILE).is_file()
    assert validate_main(["--artifacts", str(tmp_path / "artifacts"), "--no-targets"]) == 0


def test_fit_then_export_then_validate_from_files(tmp_path: Path) -> None:
    """The three CLIs chain through var/-like and artifacts/-like folders."""
    data, _ = write_history(generate_records(900, seed=5), tmp_path / "data" / "h.jsonl")
    out, artifacts = tmp_path / "train", tmp_path / "artifacts"
    assert fit_main(["--data", str(data), "--out", str(out), "--quick"]) == 0
    assert (
        export_main(
            [
                "--bundle",
                str(out / "models.joblib"),
                "--artifacts",
                str(artifacts),
                "--parity-rows",
                "0",
            ]
        )
        == 0
    )
    folder = artifacts / "models" / (artifacts / CURRENT_FILE).read_text().strip()
    assert (folder / "report" / "metrics.json").is_file()
    assert (folder / "report" / "predicted_vs_actual.png").is_file()
    assert validate_main(["--artifacts", str(artifacts), "--no-targets"]) == 0


def test_export_without_a_bundle_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No training run yet: exit 1, one line naming the missing bundle and the fix."""
    bundle = tmp_path / "models.joblib"
    assert export_main(["--bundle", str(bundle), "--artifacts", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {bundle}: no such file: expected the fitted models (run `just train`)\n"


def test_export_of_a_foreign_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is not a training bundle is refused without a traceback."""
    bundle = tmp_path / "models.joblib"
    bundle.write_bytes(b"garbage")
    assert export_main(["--bundle", str(bundle), "--artifacts", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bundle}: cannot load")
    assert err.count("\n") == 1
