"""list_versions: every version folder, newest first, readable or not, and the alias;
read_current: the one reader of that alias."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from server.domain.versions import list_versions, read_alias, read_current
from server.errors import ArtifactError
from tests.server.conftest import Versions


def test_versions_are_listed_newest_first_with_lineage(
    artifacts: Path, built_versions: Versions
) -> None:
    """The second version (exported while the first was current) names it as parent."""
    listing = list_versions(artifacts)
    assert [v.version for v in listing.versions] == [built_versions.second, built_versions.first]
    newest = listing.versions[0]
    assert newest.parent_version == built_versions.first
    assert newest.training_rows == 1500
    assert newest.model_bytes is not None
    assert newest.model_bytes > 0
    assert set(newest.metrics) == {"result_count", "duration_s", "empty"}


def test_current_is_the_alias(artifacts: Path, built_versions: Versions) -> None:
    """Exactly the version artifacts/current names is flagged current."""
    listing = list_versions(artifacts)
    assert listing.current == built_versions.first
    assert [v.current for v in listing.versions] == [False, True]


def test_an_unreadable_manifest_is_listed_with_its_problem(
    artifacts: Path, built_versions: Versions
) -> None:
    """A broken version is shown (with why), not silently dropped."""
    (artifacts / "models" / built_versions.second / "manifest.json").write_text("{not json")
    broken = list_versions(artifacts).versions[0]
    assert broken.version == built_versions.second
    assert broken.problem is not None
    assert "not a manifest" in broken.problem


def test_hidden_folders_are_skipped(artifacts: Path, built_versions: Versions) -> None:
    """A version being written or pruned (a dot folder) is not a version yet."""
    shutil.copytree(
        artifacts / "models" / built_versions.first, artifacts / "models" / ".staging-x"
    )
    assert len(list_versions(artifacts).versions) == 2


def test_no_models_folder_and_no_alias(tmp_path: Path) -> None:
    """An empty artifacts directory lists nothing and names no current version."""
    listing = list_versions(tmp_path)
    assert listing.current is None
    assert listing.versions == []


def test_a_malformed_alias_reads_as_none(tmp_path: Path) -> None:
    """A pointer that is not a folder name is no alias at all."""
    (tmp_path / "current").write_text("../../etc\n")
    assert read_alias(tmp_path) is None


def test_no_pointer_yet_reads_as_none(tmp_path: Path) -> None:
    """Before the first export there is no alias: None, not an error."""
    assert read_current(tmp_path) is None


@pytest.mark.parametrize("name", ["../etc", "a/b", "", " .hidden"])
def test_a_pointer_naming_a_path_is_refused(tmp_path: Path, name: str) -> None:
    """current must name a plain folder, never a path that escapes models/."""
    (tmp_path / "current").write_text(name)
    with pytest.raises(ArtifactError, match="is not a folder name: expected letters"):
        read_current(tmp_path)
