"""The serving alias `artifacts/current`: the one way it is written, and the lock of moves.

    with alias_lock(artifacts):          every move and prune holds it
        write_alias(artifacts, version, kind="promote")   temporary file + fsync + os.replace
    read_last_move(artifacts) -> AliasMove | None   the last move, if it made `current`
    mark_rolled_back(artifacts, version, RollbackMark(...))
    read_rollback_mark(artifacts, version) -> RollbackMark | None
    roll_back(artifacts, version, parent, mark, verify)   the server's automatic rollback

`just promote`, `just rollback`, `just export` (export/) and the server's automatic
rollback after a failed probation (server/monitoring/probation.py) all write the pointer
through `write_alias`, so a reader (a worker's poll, `just validate`) only ever sees the
old line or the new one. The lock is an exclusive flock on `artifacts/.lifecycle.lock`,
beside the pointer: every process that may move the alias mounts that directory, so
workers and replicas on several hosts serialise on the same file (Linux NFS clients map
flock to an NFS lock).

Beside the pointer, `artifacts/.last-move.json` says what the last move was (promote or
rollback, from which version, when), written just before the pointer itself. A rollback
starts no probation; a promotion does. When the record does not name what `current` names
(the pointer was written by hand, or a crash fell between the two writes), the pointer's
mtime is when its version went live and the move counts as a promotion.

A version the server rolled back gets `rolled_back.json` in its folder (when, to which
version, why). The folder's checked files are the ones its manifest lists, so the mark
changes no checksum; it goes when the folder is pruned. A marked version is not promoted
again unless someone asks for it by name (`just promote VERSION --allow-rolled-back`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

import msgspec

from server.domain.artifact import CURRENT_FILE, MODELS_DIR

__all__ = [
    "LOCK_FILE",
    "MOVE_FILE",
    "ROLLBACK_FILE",
    "AliasMove",
    "MoveKind",
    "RollbackMark",
    "alias_lock",
    "mark_rolled_back",
    "read_last_move",
    "read_rollback_mark",
    "roll_back",
    "write_alias",
]

LOCK_FILE: Final = ".lifecycle.lock"
ROLLBACK_FILE: Final = "rolled_back.json"
MOVE_FILE: Final = ".last-move.json"
MoveKind = Literal["promote", "rollback"]


class AliasMove(msgspec.Struct, frozen=True, kw_only=True):
    """The last move of the alias: to which version, from which, what kind, when."""

    version: str
    previous: str | None
    kind: MoveKind
    at: datetime  # UTC


class RollbackMark(msgspec.Struct, frozen=True, kw_only=True):
    """Why and when the server rolled a version back, and to which version."""

    rolled_back_at: str  # UTC ISO-8601
    to_version: str
    reason: str  # "accuracy", "coverage" or "errors" (the counter's label)
    detail: str  # the figures and thresholds, in words


_MARK_DECODER: Final = msgspec.json.Decoder(RollbackMark)
_MOVE_DECODER: Final = msgspec.json.Decoder(AliasMove)


@contextlib.contextmanager
def alias_lock(artifacts: Path) -> Iterator[None]:
    """Hold the exclusive lock every move of the alias takes (blocks until it is free)."""
    with (artifacts / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _replace(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all (temporary file in the same folder)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_alias(artifacts: Path, version: str, *, kind: MoveKind) -> None:
    """Point `artifacts/current` at `version` atomically and record the move (the caller
    checked the version and holds `alias_lock`); OSError when it cannot be written."""
    try:
        previous: str | None = (artifacts / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        previous = None
    move = AliasMove(version=version, previous=previous, kind=kind, at=datetime.now(UTC))
    _replace(artifacts / MOVE_FILE, msgspec.json.encode(move))
    _replace(artifacts / CURRENT_FILE, (version + "\n").encode())


def read_last_move(artifacts: Path) -> AliasMove | None:
    """The recorded last move; None when there is none or it is unreadable."""
    try:
        return _MOVE_DECODER.decode((artifacts / MOVE_FILE).read_bytes())
    except (OSError, msgspec.DecodeError):
        return None


def mark_rolled_back(artifacts: Path, version: str, mark: RollbackMark) -> None:
    """Record in `version`'s folder that it was rolled back (OSError if not writable)."""
    _replace(artifacts / MODELS_DIR / version / ROLLBACK_FILE, msgspec.json.encode(mark))


def read_rollback_mark(artifacts: Path, version: str) -> RollbackMark | None:
    """The mark of a rolled-back `version`; None when it has none (or it is unreadable)."""
    try:
        return _MARK_DECODER.decode((artifacts / MODELS_DIR / version / ROLLBACK_FILE).read_bytes())
    except (OSError, msgspec.DecodeError):
        return None


def roll_back(
    artifacts: Path,
    version: str,
    parent: str,
    mark: RollbackMark,
    verify: Callable[[Path, str], object],
) -> bool:
    """Point the alias back at `parent` if it still names `version`, and mark `version`;
    True when this call moved it (False: another worker or replica, or a person, moved it
    first). `verify(artifacts, parent)` runs first, under the lock: the server's own
    artifact checks, raising when the parent cannot be served. OSError when the artifacts
    directory cannot be written; a mark that cannot be written leaves the move standing."""
    with alias_lock(artifacts):
        try:
            current = (artifacts / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return False
        if current != version:
            return False
        verify(artifacts, parent)
        write_alias(artifacts, parent, kind="rollback")
    with contextlib.suppress(OSError):
        mark_rolled_back(artifacts, version, mark)
    return True
