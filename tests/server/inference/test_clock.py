"""The serving clock bucket: rows as served floor the time of day to the minute, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import numpy as np
import pytest

from server.domain.features import encode_row
from server.domain.scan import Scan
from server.inference.clock import CLOCK_COLUMN, served_matrix, served_row
from tests.server.conftest import SCAN

BASE = msgspec.convert(SCAN, Scan)


def stamps(n: int) -> list[datetime]:
    """Instants spread over a week, with seconds and microseconds, around the clock."""
    rng = np.random.default_rng(0)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    return [start + timedelta(seconds=float(s)) for s in rng.uniform(0, 7 * 86400, n)]


def test_a_served_row_is_the_encoding_of_the_instant_floored_to_its_minute() -> None:
    """For any instant, the served row equals encode_row of that instant with its seconds
    dropped: flooring the one column is exactly bucketing the clock (encoding unchanged)."""
    for ts in stamps(500):
        scan = msgspec.structs.replace(BASE, timestamp=ts)
        floored = msgspec.structs.replace(BASE, timestamp=ts.replace(second=0, microsecond=0))
        expected = np.asarray(encode_row(floored), dtype=np.float32)
        np.testing.assert_array_equal(served_row(scan), expected)


def test_the_same_scan_within_a_minute_gives_the_same_row() -> None:
    """A scan without a timestamp: one row for the whole minute, a new one after it."""
    scan = msgspec.structs.replace(BASE, timestamp=None)
    minute = datetime(2026, 3, 3, 15, 1, tzinfo=UTC)
    rows = {served_row(scan, minute + timedelta(seconds=s)).tobytes() for s in (0, 1.1, 59.9)}
    assert len(rows) == 1
    assert served_row(scan, minute + timedelta(seconds=60)).tobytes() not in rows


def test_only_the_clock_column_changes() -> None:
    """Every other column is the encoding as trained."""
    scan = msgspec.structs.replace(BASE, timestamp=datetime(2026, 3, 3, 15, 1, 42, tzinfo=UTC))
    raw = np.asarray(encode_row(scan), dtype=np.float32)
    served = served_row(scan)
    others = [i for i in range(len(raw)) if i != CLOCK_COLUMN]
    np.testing.assert_array_equal(served[others], raw[others])
    assert float(raw[CLOCK_COLUMN] - served[CLOCK_COLUMN]) == pytest.approx(42 / 60, abs=1e-4)


def test_served_matrix_is_served_rows_stacked() -> None:
    """The batch path gives the rows the single path gives."""
    scans = [msgspec.structs.replace(BASE, timestamp=ts) for ts in stamps(50)]
    np.testing.assert_array_equal(served_matrix(scans), np.stack([served_row(s) for s in scans]))
