"""The model versions on disk, listed the same way by `just models` and GET /v1/models/versions.

    list_versions(artifacts) -> VersionList

Each `artifacts/models/<version>/manifest.json` is decoded (msgspec only: no graph is
opened, no checksum is computed, so a listing costs one small read per version). A folder
whose manifest cannot be read is still listed, with `problem` saying why, so an operator
sees it instead of wondering where it went. Hidden folders (a version being written or
pruned) are skipped. Versions come newest first: their names start with the UTC time of
their export (`20261126T040512Z-1a2b3c4d`), so name order is time order.

`current` is the version `artifacts/current` names: the serving alias every worker
follows. Whether a given worker already serves it is the server's business (`serving`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Final

import msgspec

from server.domain.artifact import CURRENT_FILE, MANIFEST_FILE, MODELS_DIR, Manifest
from server.domain.scan import WireStruct
from server.errors import ArtifactError

__all__ = [
    "HEADLINE_METRICS",
    "VERSION_NAME",
    "VersionInfo",
    "VersionList",
    "list_versions",
    "read_alias",
    "read_current",
]

# A version names one folder: no separators, no "..", nothing a shell would mangle.
VERSION_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# The metric groups a listing shows (the manifest holds more: learning curve, timings).
HEADLINE_METRICS: Final = ("result_count", "duration_s", "empty")
_DECODER: Final = msgspec.json.Decoder(Manifest)


def _doc(text: str) -> msgspec.Meta:
    """A field's description (meaning and unit), for the OpenAPI document."""
    return msgspec.Meta(description=text)


class VersionInfo(WireStruct, frozen=True):
    """One version folder: its lineage, its held-out metrics and whether it is current."""

    version: Annotated[str, _doc("the version's folder name")]
    current: Annotated[bool, _doc("whether the current alias names it")]
    created_at: Annotated[
        str | None, _doc("when it was trained, UTC ISO-8601; null when the manifest is unreadable")
    ] = None
    parent_version: Annotated[
        str | None, _doc("the version it was retrained from; null for a first version")
    ] = None
    training_rows: Annotated[int | None, _doc("rows it was trained on, count")] = None
    model_bytes: Annotated[int | None, _doc("size of its ONNX model file, bytes")] = None
    # metrics[group][name] on the version's held-out test split (result_count, duration_s,
    # empty); e.g. metrics["result_count"]["mae"], ["duration_s"]["coverage_90"].
    metrics: Annotated[
        dict[str, dict[str, float]],
        _doc("held-out test metrics by group (result_count, duration_s, empty), then by name"),
    ] = msgspec.field(default_factory=dict)
    # Why the manifest could not be read; None for a readable version.
    problem: Annotated[
        str | None, _doc("why its manifest could not be read; null for a readable version")
    ] = None


class VersionList(WireStruct, frozen=True):
    """Every version on disk, newest first; `current` is the serving alias."""

    current: Annotated[
        str | None, _doc("the version the current alias names; null when it is missing")
    ]
    versions: Annotated[list[VersionInfo], _doc("every version on disk, newest first")]
    # The version this worker serves (the server fills it in; None offline).
    serving: Annotated[str | None, _doc("the version this worker serves; null offline")] = None


def read_current(artifacts: Path) -> str | None:
    """The version `artifacts/current` names, or None when there is no pointer yet.

    The one reader of the pointer: the server's verification, `just validate`, export,
    promote and retrain all call it (`read_alias` is its lenient form, for listings).
    ArtifactError when the pointer cannot be read or names no plain folder (a separator,
    "..", an empty line): it must never lead a reader outside `artifacts/models`.
    """
    pointer = artifacts / CURRENT_FILE
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{pointer}: cannot read ({exc}): expected one version name") from None
    if not VERSION_NAME.match(name):
        raise ArtifactError(
            f"{pointer}: version {name!r} is not a folder name: expected letters, digits, "
            "'.', '_' or '-' (like 20261126T040512Z-1a2b3c4d)"
        )
    return name


def read_alias(artifacts: Path) -> str | None:
    """The version `artifacts/current` names, or None when it is missing or malformed."""
    try:
        return read_current(artifacts)
    except ArtifactError:
        return None


def _info(folder: Path, current: str | None) -> VersionInfo:
    name = folder.name
    path = folder / MANIFEST_FILE
    try:
        manifest = _DECODER.decode(path.read_bytes())
    except OSError as exc:
        return VersionInfo(version=name, current=name == current, problem=f"{path}: {exc}")
    except msgspec.DecodeError as exc:
        return VersionInfo(
            version=name, current=name == current, problem=f"{path}: not a manifest: {exc}"
        )
    if manifest.version != name:
        return VersionInfo(
            version=name,
            current=name == current,
            problem=f"{path} says version {manifest.version!r}",
        )
    try:
        size: int | None = (folder / manifest.model_file).stat().st_size
    except OSError:
        size = None
    return VersionInfo(
        version=name,
        current=name == current,
        created_at=manifest.created_at,
        parent_version=manifest.parent_version,
        training_rows=manifest.training_data.rows,
        model_bytes=size,
        metrics={g: manifest.metrics[g] for g in HEADLINE_METRICS if g in manifest.metrics},
    )


def _age_key(folder: Path) -> tuple[str, int, str]:
    """Sort key, oldest first: the name's timestamp, then the manifest's write time."""
    try:
        written = (folder / MANIFEST_FILE).stat().st_mtime_ns
    except OSError:
        written = 0
    return folder.name.split("-", 1)[0], written, folder.name


def list_versions(artifacts: Path) -> VersionList:
    """Every version folder under `artifacts/models`, newest first, and the alias."""
    current = read_alias(artifacts)
    models = artifacts / MODELS_DIR
    try:
        folders = [p for p in models.iterdir() if p.is_dir() and VERSION_NAME.match(p.name)]
    except FileNotFoundError:
        folders = []
    # A name starts with its UTC second; two versions made in the same second (a retrain
    # right after an export) are told apart by when their manifest was written.
    folders.sort(key=_age_key, reverse=True)
    return VersionList(current=current, versions=[_info(f, current) for f in folders])
