"""Promote, roll back and prune: the alias moves only after validation, prune spares lineage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export.lifecycle import LifecycleError, Move, promote, prune, rollback
from tests.export.conftest import LINEAGE

V1, V2, V3, V4 = LINEAGE


def _current(artifacts: Path) -> str:
    return (artifacts / "current").read_text().strip()


def _tamper(artifacts: Path, version: str) -> None:
    model = artifacts / "models" / version / "model.onnx"
    model.write_bytes(model.read_bytes()[:-8] + b"tampered")


def test_promote_validates_then_switches_the_alias(lineage: Path) -> None:
    """A valid version becomes current; the move names what served before."""
    move = promote(lineage, V2, targets=False)
    assert move == Move(previous=V4, version=V2, changed=True)
    assert _current(lineage) == V2


def test_promote_of_the_current_version_changes_nothing(lineage: Path) -> None:
    """Promoting what already serves is not an error and not a move."""
    assert promote(lineage, V4, targets=False).changed is False
    assert _current(lineage) == V4


def test_promote_of_a_missing_version_is_refused(lineage: Path) -> None:
    """A name with no folder: one line naming it, the alias untouched."""
    with pytest.raises(LifecycleError, match=r"'20990101T000000Z-deadbeef' does not exist"):
        promote(lineage, "20990101T000000Z-deadbeef", targets=False)
    assert _current(lineage) == V4


def test_promote_of_a_malformed_name_is_refused(lineage: Path) -> None:
    """A name that is not a folder name (a path) never reaches the file system."""
    with pytest.raises(LifecycleError, match="not a folder name"):
        promote(lineage, "../elsewhere", targets=False)
    assert _current(lineage) == V4


def test_promote_of_a_corrupt_version_is_refused(lineage: Path) -> None:
    """A graph whose bytes differ from its manifest's sha256 fails the checksum check."""
    _tamper(lineage, V2)
    with pytest.raises(LifecycleError, match="checksums check failed"):
        promote(lineage, V2, targets=False)
    assert _current(lineage) == V4


def test_promote_checks_the_metric_targets_by_default(lineage: Path) -> None:
    """A tiny model misses the default model's bars, so a plain promotion refuses it."""
    with pytest.raises(LifecycleError, match="target"):
        promote(lineage, V2)
    assert _current(lineage) == V4


def test_rollback_goes_to_the_parent(lineage: Path) -> None:
    """Rollback serves the current version's parent_version, twice in a row down the line."""
    assert rollback(lineage, targets=False) == Move(previous=V4, version=V3, changed=True)
    assert rollback(lineage, targets=False).version == V2
    assert _current(lineage) == V2


def test_rollback_without_a_parent_is_refused(lineage: Path) -> None:
    """The root of the lineage has nowhere to go back to."""
    promote(lineage, V1, targets=False)
    with pytest.raises(LifecycleError, match="no parent_version"):
        rollback(lineage, targets=False)
    assert _current(lineage) == V1


def test_rollback_to_a_corrupt_parent_is_refused(lineage: Path) -> None:
    """The parent is validated like any promotion; a broken one leaves current alone."""
    _tamper(lineage, V3)
    with pytest.raises(LifecycleError, match="checksums"):
        rollback(lineage, targets=False)
    assert _current(lineage) == V4


def test_prune_keeps_the_newest_and_the_current_lineage(lineage: Path) -> None:
    """keep=1 with V2 current keeps V4 (newest), V2 (current) and V1 (its parent)."""
    promote(lineage, V2, targets=False)
    assert prune(lineage, keep=1) == [V3]
    left = sorted(p.name for p in (lineage / "models").iterdir())
    assert left == [V1, V2, V4]


def test_prune_never_removes_current_or_its_parent(lineage: Path) -> None:
    """With the oldest version current, only the versions between are removed."""
    promote(lineage, V2, targets=False)
    promote(lineage, V1, targets=False)
    assert prune(lineage, keep=1) == [V3, V2]
    assert sorted(p.name for p in (lineage / "models").iterdir()) == [V1, V4]


def test_prune_dry_run_removes_nothing(lineage: Path) -> None:
    """A dry run names the victims and leaves every folder in place."""
    assert prune(lineage, keep=2, dry_run=True) == [V2, V1]
    assert len(list((lineage / "models").iterdir())) == 4


def test_prune_needs_at_least_one_version_kept(lineage: Path) -> None:
    """keep=0 is refused with the value and the bound."""
    with pytest.raises(LifecycleError, match="keep=0: expected at least 1"):
        prune(lineage, keep=0)


def test_a_missing_artifacts_directory_is_one_line(tmp_path: Path) -> None:
    """Every move names the missing directory instead of raising OSError."""
    with pytest.raises(LifecycleError, match="no such folder"):
        rollback(tmp_path / "nowhere")


def test_a_retrained_version_is_judged_by_its_comparison_not_the_targets(
    lineage: Path,
) -> None:
    """A manifest with a retrain comparison skips the default-data bars (a tiny model
    passes); its integrity is still checked."""
    path = lineage / "models" / V2 / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["comparison"] = {
        "champion": V1,
        "rule": "r",
        "promote": True,
        "reasons": ["promote"],
        "differences": [],
        "checks": {},
    }
    path.write_text(json.dumps(manifest))
    assert promote(lineage, V2).version == V2
    _tamper(lineage, V2)
    promote(lineage, V4, targets=False)
    with pytest.raises(LifecycleError, match="checksums"):
        promote(lineage, V2)
