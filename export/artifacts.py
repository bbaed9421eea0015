"""The artifact directory on disk: version folders and the `current` pointer.

    artifacts/
      current                      one line: the version in service
      models/<version>/            model.onnx, manifest.json, parity.npz, report/...

A version folder is written under a temporary name and renamed into place, and `current`
is replaced through a temporary file and os.replace, so a reader (the server, validate)
never sees half a version or half a pointer.

The pointer is read by `server.domain.versions.read_current` (re-exported here), the one
reader the server and every offline command share.

Errors:

    ArtifactError   (server.errors) the pointer or the folder it names is missing or malformed
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from server.domain.artifact import CURRENT_FILE, MANIFEST_FILE, MODELS_DIR
from server.domain.versions import VERSION_NAME, read_current
from server.errors import ArtifactError

__all__ = [
    "ArtifactError",
    "point_current",
    "read_current",
    "version_dir",
    "write_version",
]


def _check_name(version: str, where: Path) -> str:
    if not VERSION_NAME.match(version):
        raise ArtifactError(
            f"{where}: version {version!r} is not a folder name: expected letters, digits, "
            "'.', '_' or '-' (like 20261126T040512Z-1a2b3c4d)"
        )
    return version


def version_dir(artifacts: Path, version: str) -> Path:
    return artifacts / MODELS_DIR / _check_name(version, artifacts)


def point_current(artifacts: Path, version: str) -> None:
    """Atomically make `version` (an existing folder with a manifest) the one in service."""
    folder = version_dir(artifacts, version)
    if not (folder / MANIFEST_FILE).is_file():
        raise ArtifactError(f"{folder}: no {MANIFEST_FILE}: expected a written model version")
    fd, tmp = tempfile.mkstemp(dir=artifacts, prefix=".current-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(version + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, artifacts / CURRENT_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_version(artifacts: Path, version: str, files: Mapping[str, bytes]) -> Path:
    """Write a version folder (relative file names, `report/x.png` allowed) all at once."""
    final = version_dir(artifacts, version)
    if final.exists():
        raise ArtifactError(f"{final} already exists: expected a new version name")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{version}-"))
    try:
        for name, data in files.items():
            target = (staging / name).resolve()
            if staging.resolve() not in target.parents:
                raise ArtifactError(f"file name {name!r} leaves the version folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        staging.chmod(0o755)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
