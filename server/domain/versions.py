"""The model versions on disk, listed the same way by `just models` and GET /v1/models/versions.

    list_versions(artifacts) -> VersionList

Each `artifacts/models/<version>/manifest.json` is decoded (msgspec only: no graph is
opened, no checksum is computed, so a listing costs one small read per version). A folder
whose manifest cannot be read is still listed, with `problem` saying why, so an operator
sees it instead of wondering where it went. Hidden folders (a version being written or
pruned) are skipped. Versions come newest first: their names start with the UTC time of
their export (`20261126T040512Z-1a2b3c4d`), so name order is time order.

A version the server rolled back after a failed probation says so (`rolled_back`: when, to
which version, why; server.domain.alias). `current` is the version `artifacts/current`
names: the serving alias every worker follows. Whether a given worker already serves it
is the server's business (`serving`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Final

import msgspec

from server.domain.alias import read_rollback_mark
from server.domain.artifact import CURRENT_FILE, MANIFEST_FILE, MODELS_DIR, Manifest
from server.domain.scan import WireStruct
from server.errors import ArtifactError

__all__ = [
    "HEADLINE_METRICS",
    "VERSION_NAME",
    "ShadowComparison",
    "ShadowReport",
    "ShadowTarget",
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
    # When and why the server rolled it back after a failed probation; None if it did not.
    rolled_back: Annotated[
        str | None,
        _doc("when and why the server rolled it back after its probation; null if it did not"),
    ] = None
    # Why the manifest could not be read; None for a readable version.
    problem: Annotated[
        str | None, _doc("why its manifest could not be read; null for a readable version")
    ] = None


class ShadowTarget(WireStruct, frozen=True):
    """One target of a shadow comparison: both versions' MAE on the same requests and the
    always-valid confidence sequence of the mean paired difference in absolute error."""

    target: Annotated[str, _doc("result_count or duration_s")]
    champion_mae: Annotated[
        float | None, _doc("the champion's MAE on the paired requests (results or seconds)")
    ]
    shadow_mae: Annotated[
        float | None, _doc("the shadow's MAE on the same requests (results or seconds)")
    ]
    difference: Annotated[
        float | None,
        _doc(
            "mean of |error of shadow| - |error of champion| per request; negative: shadow closer"
        ),
    ]
    lower: Annotated[
        float | None, _doc("lower end of the (1 - alpha) confidence sequence of `difference`")
    ]
    upper: Annotated[
        float | None, _doc("upper end of the (1 - alpha) confidence sequence of `difference`")
    ]
    p_value: Annotated[
        float | None, _doc("always-valid p-value of no difference: below alpha iff decided")
    ]
    verdict: Annotated[
        str,
        _doc("better (the sequence lies below 0), worse (above 0), undecided, or not enough data"),
    ]
    champion_coverage: Annotated[
        float | None, _doc("share of outcomes inside the champion's 90% interval")
    ] = None
    shadow_coverage: Annotated[
        float | None, _doc("share of outcomes inside the shadow's 90% interval")
    ] = None


class ShadowComparison(WireStruct, frozen=True):
    """A shadow version against one champion version, on the requests both scored."""

    champion: Annotated[str, _doc("the version that answered the requests")]
    shadow: Annotated[str, _doc("the version that scored them in the shadow")]
    n: Annotated[int, _doc("labelled requests both versions scored, count")]
    alpha: Annotated[float, _doc("the sequence's error rate, valid at every look")]
    result_count: Annotated[ShadowTarget, _doc("the result count comparison")]
    duration_s: Annotated[ShadowTarget, _doc("the duration comparison")]
    champion_brier: Annotated[float | None, _doc("the champion's p_empty Brier score")] = None
    shadow_brier: Annotated[float | None, _doc("the shadow's p_empty Brier score")] = None
    note: Annotated[str | None, _doc("why figures are missing (too few pairs)")] = None


class ShadowReport(WireStruct, frozen=True):
    """The shadow version, if any, and its paired comparisons with each champion."""

    version: Annotated[
        str | None, _doc("the version SCANOPT_SHADOW_VERSION names; null offline or unset")
    ] = None
    share: Annotated[float | None, _doc("share of answered scans the shadow scores")] = None
    comparisons: Annotated[
        list[ShadowComparison], _doc("one per (champion, shadow) pair of versions seen")
    ] = msgspec.field(default_factory=list)
    problem: Annotated[
        str | None, _doc("why the comparison could not be read (the store); null when it was")
    ] = None


class VersionList(WireStruct, frozen=True):
    """Every version on disk, newest first; `current` is the serving alias."""

    current: Annotated[
        str | None, _doc("the version the current alias names; null when it is missing")
    ]
    versions: Annotated[list[VersionInfo], _doc("every version on disk, newest first")]
    # The version this worker serves (the server fills it in; None offline).
    serving: Annotated[str | None, _doc("the version this worker serves; null offline")] = None
    # The shadow scoring figures (server.monitoring.shadow); None without a shadow or store.
    shadow: Annotated[
        ShadowReport | None,
        _doc("the shadow version and its paired comparisons; null when none is configured"),
    ] = None


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
    mark = read_rollback_mark(folder.parent.parent, name)
    return VersionInfo(
        version=name,
        current=name == current,
        created_at=manifest.created_at,
        parent_version=manifest.parent_version,
        training_rows=manifest.training_data.rows,
        model_bytes=size,
        rolled_back=None
        if mark is None
        else f"at {mark.rolled_back_at} to {mark.to_version} ({mark.reason}): {mark.detail}",
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
