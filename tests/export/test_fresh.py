"""The fresh-population check of `just validate`: a weak model fails it, the default passes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from export.checks import validate_version
from export.fresh import with_fresh_checks
from export.validate import main


def test_a_model_trained_on_1500_rows_fails_on_unseen_users(built_artifacts: Path) -> None:
    """The quick model (1,500 rows, 40 rounds) misses the fresh count bar, measured now."""
    run = with_fresh_checks(validate_version(built_artifacts, targets=True))
    fresh = {c.name: c for c in run.checks if c.name.startswith("measured now: ")}
    assert fresh, "the fresh-population checks did not run"
    assert not fresh["measured now: MAE result_count / oracle (fresh)"].passed
    assert not run.ready


def test_validate_names_the_fresh_population_and_fails(
    built_artifacts: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`just validate` on the weak model: exit 1, the table lists the unseen users scored."""
    monkeypatch.setenv("COLUMNS", "250")  # one table row per line
    artifacts = Path(shutil.copytree(built_artifacts, tmp_path / "artifacts"))
    assert main(["--artifacts", str(artifacts)]) == 1
    out = capsys.readouterr().out
    assert "unseen users" in out
    assert "measured now" in out


def test_a_broken_version_is_not_scored(built_artifacts: Path, tmp_path: Path) -> None:
    """A version failing an integrity check gets no fresh checks: its graph is not trusted."""
    artifacts = Path(shutil.copytree(built_artifacts, tmp_path / "artifacts"))
    version = (artifacts / "current").read_text().strip()
    (artifacts / "models" / version / "model.onnx").write_bytes(b"garbage")
    run = validate_version(artifacts, targets=True)
    assert with_fresh_checks(run).checks == run.checks


def test_the_committed_default_is_ready_and_meets_every_bar_on_unseen_users(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`just validate` on artifacts/current: every check passes, fresh population included."""
    monkeypatch.setenv("COLUMNS", "250")  # one table row per line
    committed = Path(__file__).resolve().parents[2] / "artifacts"
    code = main(["--artifacts", str(committed)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "measured now: MAE result_count / oracle (fresh)" in captured.out
    assert "READY" in captured.out
