"""Monitor.flush while the store is down: drift counts are kept and written later, not lost."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from server.domain.artifact import MODEL_OUTPUTS, Manifest
from server.domain.scan import Scan
from server.errors import StoreUnavailableError
from server.inference.clock import served_row
from server.monitoring.gauges import MonitoringGauges
from server.monitoring.monitor import Monitor, MonitorSettings
from server.store.interface import Store
from server.store.monitoring import DriftCount
from tests.server.conftest import SCAN, Versions
from tests.server.store.backends import anyio_backend

__all__ = ["anyio_backend"]

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 2, 12, 0, 10, tzinfo=UTC)


class _Flaky:
    """A store whose drift writes fail while `down`, and that keeps what it was given."""

    def __init__(self) -> None:
        self.down = False
        self.commit_breaks = False  # store the counts, then fail as a broken COMMIT does
        self.written: list[DriftCount] = []
        self.flushes: set[str] = set()

    async def add_drift_counts(
        self, counts: Sequence[DriftCount], flush_id: str | None = None
    ) -> bool:
        if self.down:
            raise StoreUnavailableError("the test store is down")
        if flush_id is not None and flush_id in self.flushes:
            return False  # as the real stores: a flush id is added once
        if flush_id is not None:
            self.flushes.add(flush_id)
        self.written.extend(counts)
        if self.commit_breaks:
            raise StoreUnavailableError("the connection broke during COMMIT: may have been stored")
        return True

    async def schema_version(self) -> int:  # a flush with nothing to write asks the store
        if self.down:
            raise StoreUnavailableError("the test store is down")
        return 4


def _monitor(store: _Flaky, artifacts: Path, version: str, registry: CollectorRegistry) -> Monitor:
    manifest = msgspec.json.decode(
        (artifacts / "models" / version / "manifest.json").read_bytes(), type=Manifest
    )
    fake: Store = store  # type: ignore[assignment]  # flush only writes drift counts and probes
    return Monitor(
        fake,
        MonitoringGauges(registry),
        artifacts,
        MonitorSettings(),
        current=lambda: manifest,
    )


def _observe(monitor: Monitor, version: str, n: int) -> None:
    row = served_row(msgspec.convert(SCAN, Scan))
    for _ in range(n):
        monitor.counter.observe_row(version, row, [0.5] * len(MODEL_OUTPUTS))


def _per_column(counts: Sequence[DriftCount]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for c in counts:
        totals[c.feature] = totals.get(c.feature, 0) + c.n
    return totals


async def test_counts_kept_while_the_store_is_down_are_written_when_it_is_back(
    artifacts: Path, built_versions: Versions
) -> None:
    """Rows observed during an outage are in the first flush that succeeds, each in the
    minute it was drained, and every column counts every row exactly once."""
    version = built_versions.first
    store = _Flaky()
    registry = CollectorRegistry()
    monitor = _monitor(store, artifacts, version, registry)
    store.down = True
    _observe(monitor, version, 3)
    assert await monitor.flush(T0) == 0
    _observe(monitor, version, 4)
    assert await monitor.flush(T0 + timedelta(seconds=5)) == 0  # same minute: merged
    _observe(monitor, version, 5)
    assert await monitor.flush(T0 + timedelta(minutes=1)) == 0  # the next minute
    assert registry.get_sample_value("scanopt_store_up") == 0
    store.down = False
    _observe(monitor, version, 2)
    assert await monitor.flush(T0 + timedelta(minutes=2)) > 0
    totals = _per_column(store.written)
    assert len(totals) > 10
    assert set(totals.values()) == {3 + 4 + 5 + 2}
    minutes: dict[datetime, int] = {}
    for c in store.written:
        if c.feature == "volatility_index":
            minute = c.bucket_start.replace(second=0, microsecond=0)
            minutes[minute] = minutes.get(minute, 0) + c.n
    assert minutes == {
        T0.replace(second=0): 7,
        T0.replace(second=0) + timedelta(minutes=1): 5,
        T0.replace(second=0) + timedelta(minutes=2): 2,
    }
    store.written.clear()
    assert await monitor.flush(T0 + timedelta(minutes=3)) == 0  # nothing is written twice
    assert store.written == []


async def test_a_flush_whose_commit_broke_is_counted_once(
    artifacts: Path, built_versions: Versions
) -> None:
    """The store took a flush but its answer was lost: the flush is kept and sent again
    under the same id, so every row is counted once, not twice."""
    version = built_versions.first
    store = _Flaky()
    monitor = _monitor(store, artifacts, version, CollectorRegistry())
    store.commit_breaks = True
    _observe(monitor, version, 3)
    assert await monitor.flush(T0) == 0
    store.commit_breaks = False
    _observe(monitor, version, 2)
    assert await monitor.flush(T0 + timedelta(minutes=1)) > 0
    assert set(_per_column(store.written).values()) == {3 + 2}
