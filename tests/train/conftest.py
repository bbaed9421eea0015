"""A production world for the retrain tests: a champion, its base history, and a store of
labelled outcomes from a shifted market, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from export.pipeline import build_version
from server.domain.scan import UNIVERSE_SIZES, ScanRecord
from server.store import store_from_dsn
from server.store.records import PredictionRecord, ScanCompleted
from tests.server.store.backends import BACKENDS, anyio_backend, pg_dsn, sqlite_dsn
from train.generate import generate_records

__all__ = ["World", "anyio_backend", "pg_dsn", "recent", "shifted", "write_outcomes"]

BASE_RECORDS = 1500
OUTCOMES = 1800
USERS = 90
DAYS = 3  # `just retrain` holds out the last of them (--holdout-days 1)
OUTCOME_MONDAY = date(2025, 6, 2)
NEW_YORK = ZoneInfo("America/New_York")  # the scans' time of day is New York's


class World(msgspec.Struct, frozen=True):
    """Where the champion, the base history and the store of outcomes are."""

    artifacts: Path
    champion: str
    history: Path
    store: str
    out: Path


def shifted(records: list[ScanRecord], factor: float) -> list[ScanRecord]:
    """The same scans in a market that returns `factor` times as many results, run by
    USERS users (the generator's own population is small)."""
    moved = []
    for i, r in enumerate(records):
        size = UNIVERSE_SIZES[r.universe]
        moved.append(
            msgspec.structs.replace(
                r,
                user_id=f"user-{i % USERS:03d}",
                result_count=min(size, round(r.result_count * factor)),
                expected_result_count=None,
                expected_duration_s=None,
            )
        )
    return moved


def recent(records: list[ScanRecord], factor: float) -> list[ScanRecord]:
    """`shifted`, on the DAYS trading days from OUTCOME_MONDAY: production outcomes come
    from the last few days, while the generator spreads its scans over a year. Each scan
    keeps its New York time of day; the i-th of n falls on day i * DAYS // n."""
    moved = []
    for i, r in enumerate(shifted(records, factor)):
        day = OUTCOME_MONDAY + timedelta(days=i * DAYS // len(records))
        local = r.timestamp.astimezone(NEW_YORK)
        at = local.replace(year=day.year, month=day.month, day=day.day).astimezone(UTC)
        moved.append(msgspec.structs.replace(r, timestamp=at))
    return moved


def write_outcomes(dsn: str, records: list[ScanRecord]) -> None:
    """Log each record as a served prediction and its scan_completed event, as the server
    and the scanner would."""

    async def write() -> None:
        store = store_from_dsn(dsn, pool_size=2)
        await store.open()
        try:
            logged = [
                PredictionRecord(
                    prediction_id=f"p{i:05d}",
                    created_at=r.timestamp,
                    user_id=r.user_id,
                    session_id=r.session_id,
                    experiment="ml_scanning",
                    arm="treatment",
                    ml_enabled=True,
                    endpoint="predict",
                    model_version="champion",
                    scan=r.to_scan(),
                )
                for i, r in enumerate(records)
            ]
            await store.write_log(logged, [])
            for i, r in enumerate(records):
                await store.record_event(
                    ScanCompleted(
                        event_id=f"e{i:05d}",
                        user_id=r.user_id,
                        session_id=r.session_id,
                        timestamp=r.timestamp + timedelta(seconds=r.duration_s),
                        prediction_id=f"p{i:05d}",
                        result_count=r.result_count,
                        duration_s=r.duration_s,
                    ),
                    r.timestamp + timedelta(seconds=r.duration_s),
                )
        finally:
            await store.close()

    asyncio.run(write())


@pytest.fixture(scope="session")
def champion_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """A champion fitted (quick) on the base history, once per session."""
    root = tmp_path_factory.mktemp("champion")
    base = generate_records(BASE_RECORDS, seed=0)
    history = root / "scan_history.jsonl"
    history.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in base))
    folder = build_version(base, root / "artifacts", seed=0, quick=True)
    return root / "artifacts", folder.name, history


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
def backend_dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store's DSN, once per backend (PostgreSQL skips outside CI when unset)."""
    if request.param == "sqlite":
        dsn = sqlite_dsn(tmp_path)
        (tmp_path / "var").mkdir(exist_ok=True)
        return dsn
    value: str = request.getfixturevalue("pg_dsn")
    return value


@pytest.fixture
def world(tmp_path: Path, champion_root: tuple[Path, str, Path], backend_dsn: str) -> World:
    """A private copy of the champion and an empty store (the test writes the outcomes)."""
    import shutil

    artifacts, champion, history = champion_root
    copy = tmp_path / "artifacts"
    shutil.copytree(artifacts, copy)
    return World(
        artifacts=copy, champion=champion, history=history, store=backend_dsn, out=tmp_path / "out"
    )
