"""export.version: a written version, its parent, and a challenger that does not serve."""

from __future__ import annotations

from pathlib import Path

from export.manifest import read_manifest
from export.version import export_version
from train.training import TrainResult


def test_the_parent_is_the_version_current_named(tmp_path: Path, quick_result: TrainResult) -> None:
    """Two exports in a row: the second's parent_version is the first."""
    first = export_version(quick_result, tmp_path, min_parity_rows=0)
    second = export_version(quick_result, tmp_path, min_parity_rows=0)
    assert first.manifest.parent_version is None
    assert second.manifest.parent_version == first.manifest.version
    assert (tmp_path / "current").read_text().strip() == second.manifest.version


def test_point_false_writes_without_moving_current(
    tmp_path: Path, quick_result: TrainResult
) -> None:
    """A challenger is written in full (a readable manifest) but current is untouched."""
    champion = export_version(quick_result, tmp_path, min_parity_rows=0)
    challenger = export_version(quick_result, tmp_path, min_parity_rows=0, point=False)
    assert (tmp_path / "current").read_text().strip() == champion.manifest.version
    manifest = read_manifest(challenger.folder / "manifest.json")
    assert manifest.parent_version == champion.manifest.version
    assert manifest.data_window is None
    assert manifest.comparison is None
