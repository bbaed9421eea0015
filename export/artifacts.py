"""The artifact directory on disk: version folders and the `current` pointer.

    artifacts/
      current                      one line: the version in service
      models/<version>/            model.onnx, manifest.json, parity.npz, report/...

A version folder is written under a temporary name and renamed into place, and `current`
is replaced through a temporary file and os.replace (server.domain.alias.write_alias, the
one writer of the pointer), so a reader (the server, validate) never sees half a version
or half a pointer.

Errors:

    ArtifactError   the pointer or the folder it names is missing or malformed
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from server.domain.alias import MoveKind, write_alias
from server.domain.artifact import CURRENT_FILE, MANIFEST_FILE, MODELS_DIR

__all__ = [
    "ArtifactError",
    "point_current",
    "read_current",
    "version_dir",
    "write_version",
]

_VERSION: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ArtifactError(Exception):
    """The artifact directory does not hold what was expected; one line, naming the path."""


def _check_name(version: str, where: Path) -> str:
    if not _VERSION.match(version):
        raise ArtifactError(
            f"{where}: version {version!r} is not a folder name: expected letters, digits, "
            "'.', '_' or '-' (like 20261126T040512Z-1a2b3c4d)"
        )
    return version


def version_dir(artifacts: Path, version: str) -> Path:
    return artifacts / MODELS_DIR / _check_name(version, artifacts)


def read_current(artifacts: Path) -> str | None:
    """The version `current` names, or None when there is no pointer yet."""
    pointer = artifacts / CURRENT_FILE
    try:
        text = pointer.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{pointer}: cannot read ({exc}): expected one version name") from None
    return _check_name(text.strip(), pointer)


def point_current(artifacts: Path, version: str, *, kind: MoveKind = "promote") -> None:
    """Atomically make `version` (an existing folder with a manifest) the one in service;
    `kind` says whether this is a promotion (its probation starts) or a rollback."""
    folder = version_dir(artifacts, version)
    if not (folder / MANIFEST_FILE).is_file():
        raise ArtifactError(f"{folder}: no {MANIFEST_FILE}: expected a written model version")
    write_alias(artifacts, version, kind=kind)


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
