"""The drift counter keeps rows cheaply and bins them into the reference bins on drain."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from server.domain.artifact import MODEL_OUTPUTS
from server.domain.features import FEATURE_NAMES, N_FEATURES
from server.monitoring.counts import DriftCounter
from server.monitoring.drift import Column, Reference

AT = datetime(2026, 3, 2, 15, 0, 30, tzinfo=UTC)
VIX = Column(
    name="volatility_index", kind="numeric", edges=(5.0, 15.0, 25.0, 90.0), shares=(0.3, 0.4, 0.3)
)
P_EMPTY = Column(name="p_empty", kind="numeric", edges=(0.0, 0.5, 1.0), shares=(0.7, 0.3))
REFERENCE = Reference(version="v1", columns=(VIX, P_EMPTY))


def _row(vix: float) -> np.ndarray:
    row = np.zeros(N_FEATURES, dtype=np.float32)
    row[FEATURE_NAMES.index("volatility_index")] = vix
    return row


def test_rows_and_batches_are_binned_by_column_name() -> None:
    """Single rows and a batch add up per bin, for a feature and an output."""
    counter = DriftCounter()
    counter.observe_row("v1", _row(10.0), (0.0,) * 6 + (0.9,))
    counter.observe_row("v1", _row(20.0), (0.0,) * 7)
    features = np.stack([_row(50.0), _row(99.0)])
    outputs = [np.zeros(2, dtype=np.float32) for _ in MODEL_OUTPUTS]
    counter.observe_batch("v1", features, outputs)
    assert counter.pending == 4
    counts = {(c.feature, c.bin): c.n for c in counter.drain({"v1": REFERENCE}, AT)}
    assert counts == {
        ("volatility_index", 0): 1,
        ("volatility_index", 1): 1,
        ("volatility_index", 2): 1,
        ("volatility_index", 3): 1,  # 99 is above the last edge: a day column's own bin
        ("p_empty", 0): 3,
        ("p_empty", 1): 1,
    }
    assert counter.pending == 0
    assert counter.drain({"v1": REFERENCE}, AT) == []


def test_a_version_without_reference_is_dropped_and_capacity_is_kept() -> None:
    """Rows of an unknown version give no counts; beyond capacity rows are skipped."""
    counter = DriftCounter(capacity=1)
    counter.observe_row("v9", _row(10.0), (0.0,) * 7)
    counter.observe_row("v9", _row(10.0), (0.0,) * 7)
    assert (counter.pending, counter.skipped) == (1, 1)
    assert counter.versions() == {"v9"}
    assert counter.drain({"v1": REFERENCE}, AT) == []
