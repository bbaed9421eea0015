"""The serving alias `artifacts/current`: the one way it is written, and the lock of moves.

    with alias_lock(artifacts):          every move and prune holds it
        write_alias(artifacts, version)  temporary file + fsync + os.replace
    mark_rolled_back(artifacts, version, RollbackMark(...))
    read_rollback_mark(artifacts, version) -> RollbackMark | None

`just promote`, `just rollback`, `just export` (export/) and the server's automatic
rollback after a failed probation (server/monitoring/probation.py) all write the pointer
through `write_alias`, so a reader (a worker's poll, `just validate`) only ever sees the
old line or the new one. The lock is an exclusive flock on `artifacts/.lifecycle.lock`,
beside the pointer: every process that may move the alias mounts that directory, so
workers and replicas on several hosts serialise on the same file (Linux NFS clients map
flock to an NFS lock).

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
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import msgspec

from server.domain.artifact import CURRENT_FILE, MODELS_DIR

__all__ = [
    "LOCK_FILE",
    "ROLLBACK_FILE",
    "RollbackMark",
    "alias_lock",
    "mark_rolled_back",
    "read_rollback_mark",
    "write_alias",
]

LOCK_FILE: Final = ".lifecycle.lock"
ROLLBACK_FILE: Final = "rolled_back.json"


class RollbackMark(msgspec.Struct, frozen=True, kw_only=True):
    """Why and when the server rolled a version back, and to which version."""

    rolled_back_at: str  # UTC ISO-8601
    to_version: str
    reason: str  # "accuracy", "coverage" or "errors" (the counter's label)
    detail: str  # the figures and thresholds, in words


_MARK_DECODER: Final = msgspec.json.Decoder(RollbackMark)


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


def write_alias(artifacts: Path, version: str) -> None:
    """Point `artifacts/current` at `version` atomically (the caller checked the version
    and holds `alias_lock`); raises OSError when the directory cannot be written."""
    _replace(artifacts / CURRENT_FILE, (version + "\n").encode())


def mark_rolled_back(artifacts: Path, version: str, mark: RollbackMark) -> None:
    """Record in `version`'s folder that it was rolled back (OSError if not writable)."""
    _replace(artifacts / MODELS_DIR / version / ROLLBACK_FILE, msgspec.json.encode(mark))


def read_rollback_mark(artifacts: Path, version: str) -> RollbackMark | None:
    """The mark of a rolled-back `version`; None when it has none (or it is unreadable)."""
    try:
        return _MARK_DECODER.decode((artifacts / MODELS_DIR / version / ROLLBACK_FILE).read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
