"""How people set scans: the parameter distribution the history is drawn from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from server.domain.features import session_clock
from server.domain.scan import Scan, Universe
from train import habits, market


@pytest.fixture(scope="module")
def scans() -> list[Scan]:
    return habits.sample_scans(np.random.default_rng(5), 4000)


def test_same_generator_state_same_scans() -> None:
    """Sampling is a pure function of the generator state."""
    first = habits.sample_scans(np.random.default_rng(9), 200)
    assert first == habits.sample_scans(np.random.default_rng(9), 200)


def test_scans_are_in_time_order_within_the_year(scans: list[Scan]) -> None:
    """Every scan has a timestamp, in order, inside the simulated year."""
    stamps = [s.timestamp for s in scans]
    assert all(t is not None for t in stamps)
    known = [t for t in stamps if t is not None]
    assert known == sorted(known)
    start = datetime.combine(habits.FIRST_DAY, datetime.min.time(), UTC)
    assert start - timedelta(days=1) <= known[0]
    assert known[-1] <= start + timedelta(days=habits.N_DAYS + 1)


def test_scans_happen_mostly_in_market_hours_most_at_the_open(scans: list[Scan]) -> None:
    """Most scans run in session on weekdays, and the first half hour is busiest."""
    clocks = np.asarray([session_clock(s.timestamp) for s in scans if s.timestamp])
    minutes, weekday, is_open = clocks[:, 0], clocks[:, 1], clocks[:, 2]
    assert is_open.mean() > 0.6
    assert (weekday >= 5).mean() < 0.1
    first_half_hour = (is_open == 1) & (minutes < 30)
    assert first_half_hour.sum() / (is_open == 1).sum() > 3 * 30 / 390


def test_saved_scans_are_re_run(scans: list[Scan]) -> None:
    """Many rows repeat a user's saved settings at another time."""
    # The same settings by the same user count once.
    settings = {(s.user_id, *(getattr(s, f) for f in habits.SETTINGS)) for s in scans}
    assert len(settings) < 0.5 * len(scans)


def test_bigger_universes_get_more_filters(scans: list[Scan]) -> None:
    """People switch on more filters over 8,000 symbols than over 101."""

    def active(s: Scan) -> int:
        return sum(
            (
                s.min_price > habits.PRICE_OFF[0] or s.max_price < habits.PRICE_OFF[1],
                s.min_avg_volume > 0,
                s.min_market_cap_musd > 0,
                s.min_abs_change_pct > 0,
                s.min_relative_volume > 0,
                s.rsi_min > 0 or s.rsi_max < 100,
            )
        )

    def mean_active(universe: Universe) -> float:
        return float(np.mean([active(s) for s in scans if s.universe is universe]))

    assert mean_active(Universe.US_ALL) > mean_active(Universe.NASDAQ100) + 1.0


def test_long_lists_are_narrowed(scans: list[Scan]) -> None:
    """Few scans expect more results than anyone reads; many expect almost none."""
    expected = market.expected_counts(market.scan_arrays(scans))
    assert np.mean(expected > 2 * habits.CEILING[1]) < 0.01
    assert np.mean(expected < 0.5) > 0.15


def test_parameters_are_round_presets(scans: list[Scan]) -> None:
    """Floors and bands look like what people type: round presets or plain ranges."""
    volume = np.asarray([s.min_avg_volume for s in scans])
    assert np.all((volume == 0) | ((volume >= 1e5) & (volume <= 5e6)))
    caps = {s.min_market_cap_musd for s in scans}
    assert caps <= {0.0} | {v for v, _ in habits.CAP_FLOORS}
    rsi = {(s.rsi_min, s.rsi_max) for s in scans}
    assert rsi <= {(0.0, 100.0)} | {(lo, hi) for lo, hi, _ in habits.RSI_BANDS}
    assert all(s.min_price < s.max_price for s in scans)


def test_vix_path_is_lognormal_around_18_with_spikes() -> None:
    """The daily regime sits around 18 and, over a year, spikes well above it."""
    paths = [habits.vix_path(np.random.default_rng(seed), habits.N_DAYS) for seed in range(20)]
    assert 14.0 < float(np.median(np.concatenate(paths))) < 23.0
    assert np.mean([p.max() / np.median(p) > 1.5 for p in paths]) > 0.5
