"""Verifying a version on disk: everything suspect is refused with the reason."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from server.errors import ArtifactError
from server.inference.artifacts import read_current, read_stamp, verify_version
from tests.server.conftest import Versions
from tests.server.onnx_graphs import write_version


def test_current_version_verifies(artifacts: Path, built_versions: Versions) -> None:
    """The version named by current passes, with its checksum and stamp."""
    verified = verify_version(artifacts)
    assert verified.manifest.version == built_versions.first
    assert verified.model_sha256 == verified.manifest.files[verified.manifest.model_file]
    assert verified.stamp == read_stamp(artifacts)


def test_missing_current_is_refused(tmp_path: Path) -> None:
    """No artifacts/current: the error says which file and how to make it."""
    with pytest.raises(ArtifactError, match=r"current does not exist.*just model"):
        read_current(tmp_path)


@pytest.mark.parametrize("name", ["../etc", "a/b", "", " .hidden"])
def test_current_naming_a_path_is_refused(tmp_path: Path, name: str) -> None:
    """current must name a plain directory, never a path that escapes models/."""
    (tmp_path / "current").write_text(name)
    with pytest.raises(ArtifactError, match="expected a directory name"):
        read_current(tmp_path)


def test_missing_version_folder_is_refused(artifacts: Path) -> None:
    """current naming a version that does not exist is refused, naming the manifest."""
    (artifacts / "current").write_text("nope")
    with pytest.raises(ArtifactError, match=r"'nope'.*manifest.json unreadable"):
        verify_version(artifacts)


def test_corrupt_model_file_is_refused(artifacts: Path, built_versions: Versions) -> None:
    """A model file whose bytes changed fails its sha256 check."""
    model = artifacts / "models" / built_versions.first / "model.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ArtifactError, match=r"model.onnx has sha256 .* corrupt or was replaced"):
        verify_version(artifacts)


def test_feature_spec_mismatch_is_refused(tmp_path: Path) -> None:
    """A version built for another feature spec is refused, showing both digests."""
    write_version(tmp_path, "other-spec", spec_digest="f" * 64)
    with pytest.raises(ArtifactError, match=r"built for feature spec ffffffffffff.*re-export"):
        verify_version(tmp_path)


def test_manifest_that_does_not_decode_is_refused(
    artifacts: Path, built_versions: Versions
) -> None:
    """A manifest missing a field is refused with msgspec's reason."""
    path = artifacts / "models" / built_versions.first / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["files"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"not a valid manifest.*files"):
        verify_version(artifacts)


def test_manifest_naming_another_version_is_refused(
    artifacts: Path, built_versions: Versions
) -> None:
    """A folder whose manifest claims another version is refused."""
    path = artifacts / "models" / built_versions.first / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["version"] = "someone-else"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="its manifest says version 'someone-else'"):
        verify_version(artifacts)


def test_stamp_changes_when_current_changes(artifacts: Path, built_versions: Versions) -> None:
    """Pointing current at another version changes the stamp pollers compare."""
    before = read_stamp(artifacts)
    (artifacts / "current").write_text(built_versions.second)
    after = read_stamp(artifacts)
    assert before[0] == built_versions.first
    assert after[0] == built_versions.second


def _list_file(artifacts: Path, version: str, name: str, content: bytes) -> None:
    folder = artifacts / "models" / version
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256(content).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_files_in_sub_folders_are_verified(artifacts: Path, built_versions: Versions) -> None:
    """A listed file in a sub-folder (the training report's plots) is checked, not refused."""
    folder = artifacts / "models" / built_versions.first
    (folder / "report").mkdir(exist_ok=True)
    (folder / "report" / "plot.png").write_bytes(b"png")
    _list_file(artifacts, built_versions.first, "report/plot.png", b"png")
    assert verify_version(artifacts).manifest.version == built_versions.first
    (folder / "report" / "plot.png").write_bytes(b"changed")
    with pytest.raises(ArtifactError, match=r"report/plot.png has sha256"):
        verify_version(artifacts)


@pytest.mark.parametrize("name", ["../../current", "/etc/hostname", "report\\plot.png"])
def test_listed_files_outside_the_version_are_refused(
    artifacts: Path, built_versions: Versions, name: str
) -> None:
    """A manifest may not make the server read files outside the version folder."""
    _list_file(artifacts, built_versions.first, name, b"x")
    with pytest.raises(ArtifactError, match="is not a relative path inside the version folder"):
        verify_version(artifacts)
