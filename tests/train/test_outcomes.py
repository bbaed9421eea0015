"""train.outcomes: the store's labelled outcomes read into Polars, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from server.store import store_from_dsn
from server.store.records import ScanCompleted
from tests.train.conftest import World, shifted, write_outcomes
from train.generate import generate_records
from train.outcomes import OutcomeError, outcome_records, read_outcomes


def _complete(dsn: str, event_id: str, prediction_id: str, count: int, **kw: object) -> None:
    async def write() -> None:
        store = store_from_dsn(dsn, pool_size=2)
        await store.open()
        try:
            at = generate_records(1, seed=5)[0].timestamp + timedelta(hours=1)
            event = ScanCompleted(
                event_id=event_id,
                user_id="user-000",
                session_id="s",
                timestamp=at,
                prediction_id=prediction_id,
                result_count=count,
                duration_s=1.0,
                **kw,  # type: ignore[arg-type]
            )
            await store.record_event(event, at)
        finally:
            await store.close()

    asyncio.run(write())


def test_outcomes_join_predictions_to_their_completions(world: World) -> None:
    """Every logged prediction with a scan_completed comes back once, with its result."""
    records = shifted(generate_records(30, seed=5), 2.0)
    write_outcomes(world.store, records)
    frame = read_outcomes(world.store)
    assert frame.height == 30
    assert frame["result_count"].to_list() == [r.result_count for r in records]
    back = outcome_records(frame)
    assert [r.to_scan() for r in back] == [r.to_scan() for r in records]


def test_a_second_completion_counts_once(world: World) -> None:
    """A retried completion under a new event id does not duplicate the outcome."""
    write_outcomes(world.store, shifted(generate_records(3, seed=5), 1.0))
    _complete(world.store, "e-late", "p00000", 999)
    frame = read_outcomes(world.store)
    assert frame.height == 3
    assert 999 not in frame["result_count"].to_list()


def test_an_applied_suggestion_is_not_an_outcome_of_the_logged_scan(world: World) -> None:
    """The user ran the suggested scan instead: that outcome is left out."""
    write_outcomes(world.store, shifted(generate_records(2, seed=5), 1.0)[:1])
    _complete(world.store, "e-x", "p00001", 5, suggestion_shown=True, suggestion_applied=True)
    assert read_outcomes(world.store).height == 1


def test_a_missing_sqlite_file_is_one_line(tmp_path: Path) -> None:
    """The path is named; nothing is created."""
    with pytest.raises(OutcomeError, match="does not exist"):
        read_outcomes(f"sqlite:///{tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()


def test_an_unknown_scheme_is_refused() -> None:
    """Only sqlite:/// and postgresql:// are stores; a password is never echoed."""
    with pytest.raises(OutcomeError, match=r"expected sqlite:///path\.db") as raised:
        read_outcomes("mysql://root:secret@db/x")
    assert "secret" not in str(raised.value)


def test_a_file_that_is_not_a_store_is_one_line(tmp_path: Path) -> None:
    """Garbage in place of the database: the error names the store and the tables."""
    bad = tmp_path / "bad.db"
    bad.write_text("garbage " * 100)
    with pytest.raises(OutcomeError, match="cannot read labelled outcomes"):
        read_outcomes(f"sqlite:///{bad}")
