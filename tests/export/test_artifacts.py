"""The artifact directory: atomic pointer, all-or-nothing version folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from export.artifacts import ArtifactError, point_current, read_current, write_version
from server.domain.artifact import CURRENT_FILE, MANIFEST_FILE


def test_no_pointer_reads_as_none(tmp_path: Path) -> None:
    """A fresh artifacts directory has no version in service."""
    assert read_current(tmp_path) is None


def test_pointing_current_replaces_it_whole(tmp_path: Path) -> None:
    """`current` names exactly the last version pointed at, one line, no temp files left."""
    for name in ("v1", "v2"):
        write_version(tmp_path, name, {MANIFEST_FILE: b"{}"})
        point_current(tmp_path, name)
    assert (tmp_path / CURRENT_FILE).read_text() == "v2\n"
    assert read_current(tmp_path) == "v2"
    assert not list(tmp_path.glob(".current-*"))


def test_pointing_at_a_version_without_manifest_is_refused(tmp_path: Path) -> None:
    """current can only name a written version."""
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):
        point_current(tmp_path, "ghost")
    assert read_current(tmp_path) is None


def test_a_version_is_never_overwritten(tmp_path: Path) -> None:
    """Writing a version name twice fails instead of mixing two models' files."""
    write_version(tmp_path, "v1", {"a": b"1"})
    with pytest.raises(ArtifactError, match="already exists"):
        write_version(tmp_path, "v1", {"a": b"2"})
    assert (tmp_path / "models" / "v1" / "a").read_bytes() == b"1"


def test_file_names_cannot_escape_the_version_folder(tmp_path: Path) -> None:
    """A '../' name is refused and nothing is left behind."""
    with pytest.raises(ArtifactError, match="leaves the version folder"):
        write_version(tmp_path, "v1", {"../evil": b"x"})
    assert not (tmp_path / "models" / "v1").exists()
    assert not list((tmp_path / "models").iterdir())


@pytest.mark.parametrize("text", ["../etc\n", "a b\n", "\n"])
def test_a_malformed_pointer_is_an_error_naming_it(tmp_path: Path, text: str) -> None:
    """current must hold one folder name; anything else is refused with its path."""
    (tmp_path / CURRENT_FILE).write_text(text)
    with pytest.raises(ArtifactError, match=r"current: version .* is not a folder name"):
        read_current(tmp_path)


def test_report_files_go_into_subfolders(tmp_path: Path) -> None:
    """Relative names like report/x.png create their folder inside the version."""
    folder = write_version(tmp_path, "v1", {"report/x.png": b"png"})
    assert (folder / "report" / "x.png").read_bytes() == b"png"
