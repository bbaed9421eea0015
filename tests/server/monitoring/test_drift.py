"""Drift scores match their textbook definitions; thresholds hold the stated false-alarm
rate on windows drawn from the reference and catch the stated shifts in the first window."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from server.domain.artifact import Manifest
from server.domain.scan import UNIVERSE_SIZES, Universe
from server.monitoring.drift import (
    FALSE_ALARM_RATE,
    Column,
    Reference,
    Thresholds,
    bin_values,
    calibrate,
    calibration_rows,
    evaluate,
    jensen_shannon,
    psi,
    score,
    wasserstein,
)

ROOT = Path(__file__).resolve().parents[3]
WINDOW = 256
WINDOWS = 2000


@pytest.fixture(scope="module")
def reference() -> Reference:
    """The committed default model's reference histograms (38 columns)."""
    current = (ROOT / "artifacts" / "current").read_text().strip()
    path = ROOT / "artifacts" / "models" / current / "manifest.json"
    return Reference.of(msgspec.json.decode(path.read_bytes(), type=Manifest))


@pytest.fixture(scope="module")
def thresholds(reference: Reference) -> Thresholds:
    return calibrate(reference, WINDOW)


COLUMN = Column(name="x", kind="numeric", edges=(0.0, 1.0, 2.0, 4.0), shares=(0.5, 0.3, 0.2))


def test_psi_matches_its_formula() -> None:
    """PSI = sum (cur - ref) ln(cur / ref)."""
    counts = np.array([30.0, 30.0, 40.0])
    cur, ref = counts / 100, np.array(COLUMN.shares)
    assert psi(COLUMN.shares, counts) == pytest.approx(
        float(((cur - ref) * np.log(cur / ref)).sum())
    )


def test_jensen_shannon_matches_scipy() -> None:
    """Jensen-Shannon distance equals scipy's (natural log), an empty bin included."""
    counts = np.array([0.0, 60.0, 40.0])
    assert jensen_shannon(COLUMN.shares, counts) == pytest.approx(
        jensenshannon(COLUMN.shares, counts / 100)
    )


def test_wasserstein_matches_scipy_on_bin_midpoints() -> None:
    """Wasserstein over the reference std equals scipy's distance of the midpoint masses."""
    counts = np.array([10.0, 30.0, 60.0])
    centers = [0.5, 1.5, 3.0]
    expected = wasserstein_distance(centers, centers, COLUMN.shares, counts / 100)
    assert wasserstein(COLUMN, counts) == pytest.approx(expected / COLUMN.std)


def test_values_beyond_the_edges_fall_in_the_end_bins() -> None:
    """Below the first edge is bin 0, above the last is the last bin, an edge opens its bin."""
    assert bin_values(COLUMN, np.array([-5.0, 0.5, 1.0, 3.9, 99.0])).tolist() == [0, 0, 1, 2, 2]


def test_calibration_rows_round_down_to_a_power_of_two() -> None:
    """A window is calibrated at the largest power of two not above its size."""
    assert [calibration_rows(n) for n in (256, 300, 511, 512)] == [256, 256, 256, 512]


def _null_window(reference: Reference, rng: np.random.Generator) -> dict[str, dict[int, int]]:
    return {
        c.name: dict(enumerate(rng.multinomial(WINDOW, np.array(c.shares) / sum(c.shares))))
        for c in reference.columns
    }


def test_windows_from_the_reference_alarm_in_at_most_one_percent(
    reference: Reference, thresholds: Thresholds
) -> None:
    """2,000 windows of 256 rows drawn from the reference: any column alarms in <= 1%."""
    rng = np.random.default_rng(12)
    alarmed = np.zeros(WINDOWS, dtype=bool)
    for column in reference.columns:
        p = np.array(column.shares) / sum(column.shares)
        counts = rng.multinomial(WINDOW, p, size=WINDOWS).astype(np.float64)
        for name in column.scores:
            alarmed |= score(column, name, counts) > thresholds.values[column.name][name]
    assert reference.tests == 76
    assert alarmed.mean() <= FALSE_ALARM_RATE


def _replace(
    window: dict[str, dict[int, int]], reference: Reference, column: str, values: np.ndarray
) -> None:
    col = next(c for c in reference.columns if c.name == column)
    window[column] = dict(
        enumerate(np.bincount(bin_values(col, values), minlength=len(col.shares)))
    )


def test_a_volatility_regime_is_caught_in_the_first_window(
    reference: Reference, thresholds: Thresholds
) -> None:
    """volatility_index moving from ~18 to ~40 alarms on that column in one window."""
    rng = np.random.default_rng(3)
    window = _null_window(reference, rng)
    _replace(window, reference, "volatility_index", rng.normal(40.0, 6.0, WINDOW).clip(5, 90))
    alarms = {d.column for d in evaluate(reference, window, thresholds) if d.alarm}
    assert "volatility_index" in alarms


def test_a_universe_mix_moving_to_us_all_is_caught_in_the_first_window(
    reference: Reference, thresholds: Thresholds
) -> None:
    """Every scan on us_all alarms on the universe columns in one window."""
    rng = np.random.default_rng(4)
    window = _null_window(reference, rng)
    size = float(UNIVERSE_SIZES[Universe.US_ALL])
    _replace(window, reference, "universe_size", np.full(WINDOW, size))
    _replace(window, reference, "universe_is_us_all", np.ones(WINDOW))
    alarms = {d.column for d in evaluate(reference, window, thresholds) if d.alarm}
    assert {"universe_size", "universe_is_us_all"} <= alarms


def test_a_small_window_reports_no_scores(reference: Reference, thresholds: Thresholds) -> None:
    """Fewer than MIN_ROWS rows in a column: n only, no score and no alarm."""
    drift = evaluate(reference, {"volatility_index": {0: 10}}, thresholds)
    vix = next(d for d in drift if d.column == "volatility_index")
    assert (vix.n, vix.psi, vix.alarm) == (10, None, False)
