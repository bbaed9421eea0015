"""The serving alias: one writer, the move it records, the lock, the rollback mark."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from server.domain.alias import (
    MOVE_FILE,
    RollbackMark,
    alias_lock,
    mark_rolled_back,
    read_last_move,
    read_rollback_mark,
    write_alias,
)


def test_write_alias_replaces_the_pointer_and_records_the_move(tmp_path: Path) -> None:
    """The pointer holds one line; the record names the kind and the version before."""
    write_alias(tmp_path, "v1", kind="promote")
    write_alias(tmp_path, "v2", kind="rollback")
    assert (tmp_path / "current").read_text() == "v2\n"
    move = read_last_move(tmp_path)
    assert move is not None
    assert (move.version, move.previous, move.kind) == ("v2", "v1", "rollback")
    # Nothing half-written is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["current", MOVE_FILE])


def test_an_unreadable_move_record_is_none(tmp_path: Path) -> None:
    """A record that does not decode counts as no record (the pointer's mtime rules)."""
    (tmp_path / MOVE_FILE).write_text("{not json")
    assert read_last_move(tmp_path) is None


def test_the_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    """A second taker waits until the first lets go."""
    order: list[str] = []
    taken = threading.Event()

    def second() -> None:
        taken.wait()
        with alias_lock(tmp_path):
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with alias_lock(tmp_path):
        taken.set()
        time.sleep(0.2)
        order.append("first")
    thread.join(timeout=10)
    assert order == ["first", "second"]


def test_a_rollback_mark_reads_back(tmp_path: Path) -> None:
    """The mark lives in the version's folder; an unmarked version has none."""
    (tmp_path / "models" / "v2").mkdir(parents=True)
    assert read_rollback_mark(tmp_path, "v2") is None
    mark = RollbackMark(
        rolled_back_at="2026-12-01T22:00:00+00:00",
        to_version="v1",
        reason="accuracy",
        detail="duration_s online MAE 48 over the plan's bar 5",
    )
    mark_rolled_back(tmp_path, "v2", mark)
    assert read_rollback_mark(tmp_path, "v2") == mark
