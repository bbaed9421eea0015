"""Drift scores match their textbook definitions; thresholds hold the stated false-alarm
rate on windows drawn from the reference and catch the stated shifts in the first window;
the market-context columns are judged the way a window of time sees them (clock columns
never alarm; without a calibration a day column alarms only beyond the training range).
A manifest's drift calibration sets each column's effective window size (its formula, its
upper bounds, the thresholds at that size); a manifest without one falls back to
independent rows and says so, under another cache key."""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2, wasserstein_distance

from server.domain.artifact import DriftCalibration, DriftDesign, Manifest, Thresholds
from server.domain.scan import UNIVERSE_SIZES, Universe
from server.monitoring import drift as drift_module
from server.monitoring.drift import (
    CLOCK_COLUMNS,
    FALSE_ALARM_RATE,
    METHOD,
    Column,
    Design,
    Reference,
    bin_values,
    calibrate,
    calibration_rows,
    evaluate,
    jensen_shannon,
    psi,
    reference_design_effect,
    score,
    time_design_effect,
    variance_upper,
    wasserstein,
    window_design_effects,
)
from server.monitoring.schemas import ColumnDrift

ROOT = Path(__file__).resolve().parents[3]
WINDOW = 256
WINDOWS = 2000


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    """The committed default model's manifest (38 reference columns, a drift calibration)."""
    current = (ROOT / "artifacts" / "current").read_text().strip()
    path = ROOT / "artifacts" / "models" / current / "manifest.json"
    return msgspec.json.decode(path.read_bytes(), type=Manifest)


@pytest.fixture(scope="module")
def reference(manifest: Manifest) -> Reference:
    return Reference.of(manifest)


@pytest.fixture(scope="module")
def thresholds(reference: Reference) -> Thresholds:
    return calibrate(reference, WINDOW)


@pytest.fixture(scope="module")
def uncalibrated(manifest: Manifest) -> Reference:
    """The same manifest without its drift calibration, as versions exported before it."""
    return Reference.of(msgspec.structs.replace(manifest, drift=None))


@pytest.fixture(scope="module")
def fallback(uncalibrated: Reference) -> Thresholds:
    return calibrate(uncalibrated, WINDOW)


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


def test_windows_beyond_the_measured_design_share_one_calibration(
    reference: Reference, uncalibrated: Reference
) -> None:
    """With design effects measured up to 8,192 rows, a window of 2^14 or more rows is
    calibrated at 2^13, whose thresholds are those of the larger size to the bit; without
    them every power of two keeps its own calibration."""
    assert [reference.calibration_rows(n) for n in (300, 4096, 8191, 8192, 20_000, 10**6)] == [
        256,
        4096,
        4096,
        8192,
        8192,
        8192,
    ]
    assert uncalibrated.calibration_rows(10**6) == calibration_rows(10**6) == 2**19
    at_cap = calibrate(reference, 8192, draws=2000)
    beyond = calibrate(reference, 2**16, draws=2000)
    assert at_cap.values == beyond.values


def _null_window(reference: Reference, rng: np.random.Generator) -> dict[str, dict[int, int]]:
    """Every column drawn row by row from its reference (a day column's rows too: by
    convexity that scores no higher than the window at one of its bins)."""
    return {
        c.name: dict(enumerate(rng.multinomial(WINDOW, np.array(c.shares) / sum(c.shares))))
        for c in reference.columns
    }


@pytest.mark.parametrize("calibrated", [True, False])
def test_scoring_in_chunks_changes_no_threshold(
    monkeypatch: pytest.MonkeyPatch,
    reference: Reference,
    uncalibrated: Reference,
    calibrated: bool,
) -> None:
    """Thresholds calibrated chunk by chunk equal those of every window scored at once, to
    the bit: sampled columns and two-bin exact ones, with and without a design."""
    ref = reference if calibrated else uncalibrated
    rows = 5000  # above the chunk sizes below, so two-bin columns are chunked too
    monkeypatch.setattr(drift_module, "_CALIBRATION_CHUNK", 10**9)
    at_once = calibrate(ref, rows, draws=9000)
    monkeypatch.setattr(drift_module, "_CALIBRATION_CHUNK", 1000)
    chunked = calibrate(ref, rows, draws=9000)
    assert at_once.values == chunked.values
    assert len(chunked.values) > 10


def test_windows_from_the_reference_alarm_in_at_most_one_percent(
    reference: Reference, thresholds: Thresholds
) -> None:
    """2,000 windows of 256 rows drawn from the reference: any column alarms in <= 1%."""
    rng = np.random.default_rng(12)
    alarmed = np.zeros(WINDOWS, dtype=bool)
    for column in reference.columns:
        if column.name in CLOCK_COLUMNS:
            continue
        p = np.array(column.shares) / sum(column.shares)
        counts = np.zeros((WINDOWS, column.n_bins))
        counts[:, : len(p)] = rng.multinomial(WINDOW, p, size=WINDOWS)
        for name in column.scores:
            alarmed |= score(column, name, counts) > thresholds.values[column.name][name]
    assert reference.tests == 70  # 38 columns x 2 scores, less the 3 clock columns'
    assert alarmed.mean() <= FALSE_ALARM_RATE


def _replace(
    window: dict[str, dict[int, int]], reference: Reference, column: str, values: np.ndarray
) -> None:
    col = next(c for c in reference.columns if c.name == column)
    window[column] = dict(
        enumerate(np.bincount(bin_values(col, values), minlength=len(col.shares)))
    )


def test_without_calibration_a_volatility_regime_is_caught_in_the_first_window(
    uncalibrated: Reference, fallback: Thresholds
) -> None:
    """Independent rows: volatility_index moving from ~18 to ~40 alarms in one window."""
    rng = np.random.default_rng(3)
    window = _null_window(uncalibrated, rng)
    _replace(window, uncalibrated, "volatility_index", rng.normal(40.0, 6.0, WINDOW).clip(5, 90))
    alarms = {d.column for d in evaluate(uncalibrated, window, fallback) if d.alarm}
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


def _window_at(reference: Reference, column: str, values: np.ndarray) -> dict[str, dict[int, int]]:
    window = _null_window(reference, np.random.default_rng(5))
    _replace(window, reference, column, values)
    return window


def _drift(
    reference: Reference, window: dict[str, dict[int, int]], thresholds: Thresholds, column: str
) -> ColumnDrift:
    return next(d for d in evaluate(reference, window, thresholds) if d.column == column)


def test_clock_columns_are_scored_but_never_alarm(
    reference: Reference, thresholds: Thresholds
) -> None:
    """An hour of one weekday at the open is far from a year's mix, and no alarm."""
    window = _window_at(reference, "weekday", np.full(WINDOW, 2.0))
    _replace(window, reference, "market_open", np.ones(WINDOW))
    _replace(window, reference, "minutes_since_open", np.linspace(0.0, 59.0, WINDOW))
    for name in sorted(CLOCK_COLUMNS):
        drift = _drift(reference, window, thresholds, name)
        assert (drift.psi or 0.0) > 0.2, name  # rows drawn one by one would alarm
        assert (drift.alarm, drift.psi_threshold) == (False, None), name
        assert name not in thresholds.values


def test_a_day_inside_the_training_range_does_not_alarm(
    reference: Reference, thresholds: Thresholds
) -> None:
    """Every row at one high but seen level (a training day): no alarm on volatility_index,
    though its PSI is far above what rows drawn one by one from the year would give."""
    vix = next(c for c in reference.columns if c.name == "volatility_index")
    level = (vix.edges[-2] + vix.edges[-1]) / 2  # inside the top decile
    rng = np.random.default_rng(6)
    drift = _drift(
        reference,
        _window_at(reference, "volatility_index", level * np.exp(rng.normal(0, 0.03, WINDOW))),
        thresholds,
        "volatility_index",
    )
    assert (drift.psi or 0.0) > 1.0
    assert not drift.alarm


def test_without_calibration_a_day_beyond_the_training_range_alarms(
    uncalibrated: Reference, fallback: Thresholds
) -> None:
    """Every row above the highest VIX of the training history (a regime at ~40): alarm."""
    vix = next(c for c in uncalibrated.columns if c.name == "volatility_index")
    values = np.full(WINDOW, vix.edges[-1] + 3.0)
    window = _window_at(uncalibrated, "volatility_index", values)
    assert _drift(uncalibrated, window, fallback, "volatility_index").alarm


def test_calibrated_a_day_beyond_the_training_range_is_an_ordinary_new_day(
    reference: Reference, thresholds: Thresholds
) -> None:
    """With the calibration the training year is worth a few independent VIX levels, so a
    day beyond them all has a reference share of 1 / (N / D + 1) and does not alarm."""
    vix = next(c for c in reference.columns if c.name == "volatility_index")
    assert vix.design is not None
    beyond = 1.0 / (vix.design.reference_rows + 1.0)
    assert vix.scored.shares[0] == vix.scored.shares[-1] == pytest.approx(beyond)
    assert sum(vix.scored.shares) == pytest.approx(1.0)
    assert beyond > 0.05  # one year of a persistent index: far from rare
    window = _window_at(reference, "volatility_index", np.full(WINDOW, vix.edges[-1] + 3.0))
    assert not _drift(reference, window, thresholds, "volatility_index").alarm


def test_the_committed_manifest_ships_a_calibration_and_thresholds_use_it(
    reference: Reference, uncalibrated: Reference
) -> None:
    """Every column that can alarm has its design; a two-bin column's threshold (exact) is
    the independent-row threshold at its effective size, which is smaller than the window."""
    assert reference.calibration is not None
    assert all((c.design is not None) == c.alarms for c in reference.columns)
    rows = 1024
    column = next(c for c in reference.columns if c.name == "universe_is_us_all")
    assert column.design is not None
    n_eff = column.design.effective_rows(rows)
    assert 1 < n_eff < rows
    at_size = calibrate(uncalibrated, n_eff).values["universe_is_us_all"]
    assert calibrate(reference, rows).values["universe_is_us_all"] == at_size
    assert (
        calibrate(uncalibrated, rows).values["universe_is_us_all"]["jensen_shannon"]
        < (at_size["jensen_shannon"])
    )


def test_a_manifest_without_calibration_falls_back_and_says_so(
    reference: Reference, uncalibrated: Reference
) -> None:
    """No design anywhere, a note naming independent rows, and another store cache key."""
    assert uncalibrated.calibration is None
    assert all(c.design is None for c in uncalibrated.columns)
    assert "independent rows" in uncalibrated.calibration_note
    assert "design effects" in reference.calibration_note
    assert uncalibrated.method != reference.method
    assert uncalibrated.method.startswith(METHOD)
    assert reference.method.startswith(METHOD)


def test_the_effective_size_follows_its_formula() -> None:
    """n_eff = 1 / (deff_w(n) / n + 2 / (N / D)), floored; the next larger measured size's
    deff between sizes; beyond the largest, the largest's effective size; at least 1."""
    design = Design(window_rows=(256, 512), windows=(2.0, 4.0), reference_rows=1000.0)
    assert design.effective_rows(256) == math.floor(1 / (2.0 / 256 + 2 / 1000))
    assert design.effective_rows(300) == math.floor(1 / (4.0 / 300 + 2 / 1000))
    assert design.effective_rows(4096) == design.effective_rows(512)
    assert Design(window_rows=(256,), windows=(1e9,), reference_rows=1.0).effective_rows(256) == 1


def test_the_upper_bound_of_a_variance_is_chi_squares() -> None:
    """(k - 1) / chi2_{k-1}(0.05) for k estimates, from the window counts a year holds."""
    for k in (8, 17, 70, 280):
        assert variance_upper(k) == pytest.approx((k - 1) / chi2.ppf(0.05, k - 1), rel=0.01)


def test_the_reference_design_effect_adds_users_and_persistence() -> None:
    """Rows independent in time: D is the users' deff (its upper bound); a column still
    persistent at the largest window (deff doubling with the size) carries it on."""
    drift = DriftCalibration(
        method="kish1",
        history_rows=8192,
        users=100,
        window_rows=[256, 512, 1024],
        windows=[32, 16, 8],
        columns={
            "flat": DriftDesign(windows=[1.0, 1.0, 1.0], users=10.0, autocorrelation=1.0),
            "level": DriftDesign(windows=[64.0, 128.0, 256.0], users=1.0, autocorrelation=3.0),
        },
    )
    flat, level = drift.columns["flat"], drift.columns["level"]
    assert time_design_effect(drift, flat) == pytest.approx(variance_upper(8) * 8 * 0.5**3)
    assert reference_design_effect(drift, flat) == pytest.approx(
        10.0 * variance_upper(100) + time_design_effect(drift, flat) - 1.0
    )
    # fully persistent: the share variance does not fall with length, deff grows with it
    assert time_design_effect(drift, level) == pytest.approx(256.0 * variance_upper(8) * 8)
    assert window_design_effects(drift, level) == tuple(
        d * variance_upper(k) for d, k in ((64.0, 32), (128.0, 16), (256.0, 8))
    )


def test_a_day_column_counts_values_beyond_its_edges_in_their_own_bins(
    reference: Reference,
) -> None:
    """volatility_index: the reference's bins, then above the last edge, then below the first."""
    vix = next(c for c in reference.columns if c.name == "volatility_index")
    k = len(vix.shares)
    values = np.array([vix.edges[0] - 1, vix.edges[0], vix.edges[-1], vix.edges[-1] + 1])
    assert bin_values(vix, values).tolist() == [k + 1, 0, k - 1, k]
    assert vix.n_bins == k + 2
