"""just drift-check's time-ordered windows: consecutive rows of a history, scored as the
server scores them. A history whose market-context columns move by the day (one VIX level
per day, one weekday, one hour of the session) and whose other columns are drawn row by
row from the reference raises no alarm; without the manifest's calibration the same
history at a VIX beyond the training range alarms in every window. On a small held-out
year the calibrated thresholds keep time-ordered false alarms within the stated rate,
where independent-row thresholds do not, and a universe shift run through the model is
caught in every first window."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt
import pytest

from bench.drift_check import (
    HeldOut,
    detection_rate,
    time_ordered_rate,
    us_all_shift,
    vix_shift,
)
from server.domain.artifact import Manifest
from server.domain.features import FEATURE_NAMES
from server.monitoring.drift import Reference, calibrate

ROOT = Path(__file__).resolve().parents[2]
ROWS = 256
DAYS = 40


def _folder() -> Path:
    return ROOT / "artifacts" / "models" / (ROOT / "artifacts" / "current").read_text().strip()


def _manifest() -> Manifest:
    return msgspec.json.decode((_folder() / "manifest.json").read_bytes(), type=Manifest)


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.of(_manifest())


@pytest.fixture(scope="module")
def uncalibrated() -> Reference:
    """The committed manifest without its drift calibration (the server's fallback)."""
    return Reference.of(msgspec.structs.replace(_manifest(), drift=None))


@pytest.fixture(scope="module")
def year() -> HeldOut:
    """12,000 scans of the held-out year (train.habits, a seed training did not use)."""
    return HeldOut(_folder() / "model.onnx", rows=12_000)


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


def test_without_calibration_days_beyond_the_training_range_alarm_in_every_window(
    uncalibrated: Reference,
) -> None:
    """Every day well above the training year's highest VIX: every window alarms on it."""
    vix = next(c for c in uncalibrated.columns if c.name == "volatility_index")
    levels = np.full(DAYS, vix.edges[-1] * 1.2)
    history = _history(uncalibrated, levels)
    thresholds = calibrate(uncalibrated, ROWS)
    rate, per_column = time_ordered_rate(uncalibrated, thresholds, history, ROWS, 500, 1)
    assert rate == 1.0
    assert per_column["volatility_index"] == 500


def test_time_ordered_false_alarms_of_a_held_out_sample_stay_within_the_rate(
    reference: Reference, uncalibrated: Reference, year: HeldOut
) -> None:
    """1,000 windows of 256 consecutive held-out scans: at most 1% alarm with the shipped
    calibration; independent-row thresholds alarm in more than that."""
    history = year.columns()
    calibrated, per_column = time_ordered_rate(
        reference, calibrate(reference, ROWS), history, ROWS, 1000, 2
    )
    independent, _ = time_ordered_rate(
        uncalibrated, calibrate(uncalibrated, ROWS), history, ROWS, 1000, 2
    )
    assert calibrated <= 0.01, per_column
    assert independent > 0.01


def test_a_universe_shift_through_the_model_is_caught_in_the_first_window(
    reference: Reference, year: HeldOut
) -> None:
    """Every scan of held-out windows moved to us_all: every window alarms, on universe_size."""
    rate, per_column = detection_rate(
        reference, calibrate(reference, ROWS), year, us_all_shift, 20, 3
    )
    assert rate == 1.0
    assert per_column["universe_size"] == 20


def test_a_vix_shift_puts_a_window_at_one_level() -> None:
    """One level per window, each row within a few percent of it; other columns untouched."""
    rng = np.random.default_rng(4)
    window = np.ones((500, len(FEATURE_NAMES)), dtype=np.float32)
    vix_shift(40.0)(rng, window)
    column = FEATURE_NAMES.index("volatility_index")
    assert np.allclose(window[:, column], 40.0, rtol=0.15)
    assert np.delete(window, column, axis=1).min() == 1.0
