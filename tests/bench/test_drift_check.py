"""just drift-check's time-ordered windows: consecutive rows of a history, scored as the
server scores them. A history whose market-context columns move by the day (one VIX level
per day, one weekday, one hour of the session) and whose other columns are drawn row by
row from the reference raises no alarm; the same history at a VIX beyond the training
range alarms in every window."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt
import pytest

from bench.drift_check import time_ordered_rate
from server.domain.artifact import Manifest
from server.monitoring.drift import Reference, calibrate

ROOT = Path(__file__).resolve().parents[2]
ROWS = 256
DAYS = 40


@pytest.fixture(scope="module")
def reference() -> Reference:
    current = (ROOT / "artifacts" / "current").read_text().strip()
    path = ROOT / "artifacts" / "models" / current / "manifest.json"
    return Reference.of(msgspec.json.decode(path.read_bytes(), type=Manifest))


def _history(reference: Reference, vix: npt.NDArray[np.float64]) -> dict[str, np.ndarray]:
    """DAYS days of ROWS rows each: row columns from their reference, day and clock
    columns set by the day and the minute, as live traffic has them."""
    rng = np.random.default_rng(8)
    n = DAYS * ROWS
    day = np.repeat(np.arange(DAYS), ROWS)
    history: dict[str, np.ndarray] = {}
    for c in reference.columns:
        p = np.asarray(c.shares) / sum(c.shares)
        history[c.name] = c.centers[rng.choice(len(p), size=n, p=p)]
    history["volatility_index"] = vix[day] * np.exp(rng.normal(0.0, 0.03, n))
    history["weekday"] = (day % 5).astype(np.float64)
    history["market_open"] = np.ones(n)
    history["minutes_since_open"] = np.tile(np.linspace(0.0, 389.0, ROWS), DAYS)
    return history


def test_days_of_ordinary_market_raise_no_alarm(reference: Reference) -> None:
    """Each day at one VIX level inside the training range: no window alarms."""
    vix = next(c for c in reference.columns if c.name == "volatility_index")
    levels = np.random.default_rng(9).uniform(vix.edges[1], vix.edges[-2], DAYS)
    rate, per_column = time_ordered_rate(
        reference, calibrate(reference, ROWS), _history(reference, levels), ROWS, 2000, 1
    )
    assert rate <= 0.01, per_column
    assert not {"volatility_index", "weekday", "market_open", "minutes_since_open"} & set(
        per_column
    )


def test_days_beyond_the_training_range_alarm_in_every_window(reference: Reference) -> None:
    """Every day well above the training year's highest VIX: every window alarms on it."""
    vix = next(c for c in reference.columns if c.name == "volatility_index")
    levels = np.full(DAYS, vix.edges[-1] * 1.2)
    rate, per_column = time_ordered_rate(
        reference, calibrate(reference, ROWS), _history(reference, levels), ROWS, 500, 1
    )
    assert rate == 1.0
    assert per_column["volatility_index"] == 500
