"""Promote, roll back and prune model versions: every move of the serving alias.

    promote(artifacts, version)   validate `version`, then point artifacts/current at it
    rollback(artifacts)           promote the parent of the version current names
    prune(artifacts, keep=N)      delete all but the N newest versions, never the current
                                  version or its parent

Where the alias lives: `artifacts/current`, a one-line file beside the immutable version
folders it names. Every worker polls it (SCANOPT_RELOAD_POLL_S) and swaps to the version
it names, so a move reaches every worker of every replica within one poll interval plus
the time to verify and warm the new graph. Replicas agree when they mount one shared
artifacts directory (a ReadWriteMany volume: NFS, EFS, a CSI driver); they need that
directory anyway, since the graph bytes a worker loads come from it. Keeping the alias in
the store instead would add a second place that could disagree with the files: an alias
naming a version some replica cannot read yet.

A move validates first, with the checks of `just validate` (manifest, feature spec,
checksums, graph contract, parity on the export fixture, output ranges and, unless
`targets=False`, the metric targets), and replaces the pointer atomically (temporary file
+ os.replace) only when every check passed. The metric targets are bars on the generated
default history's test split; a version `just retrain` made carries its own bar instead,
the paired comparison on recent users recorded in its manifest, so its targets are not
checked (the integrity checks are). Moves and prunes take the exclusive lock of
server.domain.alias (flock on artifacts/.lifecycle.lock), the one the server's automatic
rollback takes too, so a prune never deletes what a promotion is validating and two moves
never interleave; the pointer is written by that module's `write_alias` alone.

A version the server rolled back after a failed probation carries a mark
(server.domain.alias.RollbackMark); promoting it again is refused unless
`allow_rolled_back=True` (`just promote VERSION --allow-rolled-back`), so nothing that
promotes by itself (`just retrain`) brings it back.

Pruning renames a folder to a hidden name before deleting it, so a listing never shows
half a version. A worker still serving a pruned version keeps serving it: its session was
built from the graph bytes in memory.

Errors:

    LifecycleError   a move or prune was refused; the alias is untouched; one line
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec

from export.artifacts import ArtifactError, point_current, read_current, version_dir
from export.checks import validate_version
from export.manifest import ManifestError, read_manifest
from server.domain.alias import LOCK_FILE, MoveKind, alias_lock, read_rollback_mark
from server.domain.artifact import MANIFEST_FILE, MODELS_DIR
from server.domain.versions import list_versions

__all__ = ["LOCK_FILE", "LifecycleError", "Move", "parent_of", "promote", "prune", "rollback"]


class LifecycleError(Exception):
    """A promotion, rollback or prune was refused; the serving alias is unchanged."""


class Move(msgspec.Struct, frozen=True, kw_only=True):
    """One move of the alias: from `previous` to `version` (`changed` False: already there)."""

    previous: str | None
    version: str
    changed: bool


@contextlib.contextmanager
def _locked(artifacts: Path) -> Iterator[None]:
    if not artifacts.is_dir():
        raise LifecycleError(f"{artifacts}: no such folder: expected the artifacts directory")
    with alias_lock(artifacts):
        yield


def _current(artifacts: Path) -> str | None:
    try:
        return read_current(artifacts)
    except ArtifactError as exc:
        raise LifecycleError(str(exc)) from None


def parent_of(artifacts: Path, version: str) -> str | None:
    """The parent_version recorded in `version`'s manifest."""
    try:
        return read_manifest(version_dir(artifacts, version) / MANIFEST_FILE).parent_version
    except (ArtifactError, ManifestError) as exc:
        raise LifecycleError(str(exc)) from None


def _retrained(artifacts: Path, version: str) -> bool:
    try:
        manifest = read_manifest(version_dir(artifacts, version) / MANIFEST_FILE)
    except (ArtifactError, ManifestError):
        return False  # validation names the problem
    return manifest.comparison is not None


def _promote_locked(
    artifacts: Path,
    version: str,
    *,
    targets: bool,
    allow_rolled_back: bool = False,
    kind: MoveKind = "promote",
) -> Move:
    previous = _current(artifacts)
    try:
        folder = version_dir(artifacts, version)
    except ArtifactError as exc:
        raise LifecycleError(f"version {version!r} not promoted: {exc}") from None
    if not folder.is_dir():
        raise LifecycleError(
            f"version {version!r} does not exist: expected a folder {folder} (`just models` "
            f"lists the versions); current still names {previous!r}"
        )
    mark = read_rollback_mark(artifacts, version)
    if mark is not None and not allow_rolled_back and previous != version:
        raise LifecycleError(
            f"version {version!r} not promoted: it was rolled back at {mark.rolled_back_at} "
            f"({mark.reason}: {mark.detail}); promote it by name with --allow-rolled-back "
            f"to serve it again; current still names {previous!r}"
        )
    if targets and _retrained(artifacts, version):
        targets = False  # judged by its recorded comparison, not the default-data bars
    run = validate_version(artifacts, version, targets=targets)
    if not run.ready:
        failed = next(c for c in run.checks if not c.passed)
        raise LifecycleError(
            f"version {version!r} not promoted: {failed.name} check failed: {failed.detail}; "
            f"current still names {previous!r}"
        )
    if previous == version:
        return Move(previous=previous, version=version, changed=False)
    try:
        point_current(artifacts, version, kind=kind)
    except (ArtifactError, OSError) as exc:
        raise LifecycleError(f"version {version!r} not promoted: {exc}") from None
    return Move(previous=previous, version=version, changed=True)


def promote(
    artifacts: Path, version: str, *, targets: bool = True, allow_rolled_back: bool = False
) -> Move:
    """Validate `version` and make it the one every worker serves; LifecycleError if not
    (also for a version the server rolled back, unless `allow_rolled_back`)."""
    with _locked(artifacts):
        return _promote_locked(
            artifacts, version, targets=targets, allow_rolled_back=allow_rolled_back
        )


def rollback(artifacts: Path, *, targets: bool = True) -> Move:
    """Promote the parent of the current version (validated like any promotion)."""
    with _locked(artifacts):
        current = _current(artifacts)
        if current is None:
            raise LifecycleError(
                f"{artifacts / 'current'}: no such file: nothing is in service to roll back"
            )
        parent = parent_of(artifacts, current)
        if parent is None:
            raise LifecycleError(
                f"version {current!r} has no parent_version in its manifest: nothing to roll "
                "back to (promote a version by name instead)"
            )
        # Going back to what served before is an explicit request: a mark does not stop it.
        return _promote_locked(
            artifacts, parent, targets=targets, allow_rolled_back=True, kind="rollback"
        )


def prune(artifacts: Path, *, keep: int, dry_run: bool = False) -> list[str]:
    """Delete all but the `keep` newest versions, sparing current and its parent.

    Returns the names removed (or, with `dry_run`, the names that would be), oldest last.
    """
    if keep < 1:
        raise LifecycleError(f"keep={keep}: expected at least 1 version to keep")
    with _locked(artifacts):
        listing = list_versions(artifacts)
        protected = {listing.current} if listing.current else set()
        if listing.current is not None:
            parent = next(
                (v.parent_version for v in listing.versions if v.version == listing.current),
                None,
            )
            if parent is not None:
                protected.add(parent)
        names = [v.version for v in listing.versions]  # newest first
        doomed = [n for n in names[keep:] if n not in protected]
        if dry_run:
            return doomed
        models = artifacts / MODELS_DIR
        for name in doomed:
            # Hidden first (one rename), then deleted: a listing never sees half a folder.
            hidden = Path(tempfile.mkdtemp(dir=models, prefix=f".pruned-{name}-"))
            os.replace(models / name, hidden / name)
            shutil.rmtree(hidden)
        return doomed
