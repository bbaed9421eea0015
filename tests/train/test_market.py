"""The market model: causal structure of counts and durations, and the noise around them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import pytest

from server.domain.scan import UNIVERSE_SIZES, Scan, ScanOutcome, Timeframe, Universe
from train import market

# Wednesday 2025-03-12: 15:00 UTC is 11:00 in New York (EDT), 90 minutes after the open.
MIDDAY = datetime(2025, 3, 12, 15, 0, tzinfo=UTC)
OPENING = datetime(2025, 3, 12, 13, 35, tzinfo=UTC)  # 09:35 New York


def scan(**overrides: Any) -> Scan:
    fields: dict[str, Any] = {
        "user_id": "u1",
        "session_id": "s1",
        "universe": Universe.SP500,
        "strategy": "momentum",
        "timeframe": Timeframe.M5,
        "lookback_bars": 100,
        "min_price": 5.0,
        "max_price": 500.0,
        "min_avg_volume": 5e5,
        "min_market_cap_musd": 0.0,
        "min_abs_change_pct": 2.0,
        "min_relative_volume": 0.0,
        "rsi_min": 0.0,
        "rsi_max": 100.0,
        "n_extra_filters": 1,
        "volatility_index": 18.0,
        "timestamp": MIDDAY,
    }
    fields.update(overrides)
    return msgspec.convert(fields, Scan)


def passes(s: Scan) -> market.FilterPasses:
    return market.filter_passes(market.scan_arrays([s]))


def test_expected_count_is_universe_size_times_pass_rate() -> None:
    """The mean count is the universe size times the product of the filters' pass rates."""
    s = scan()
    rate = float(market.pass_rates(market.scan_arrays([s]))[0])
    assert 0.0 < rate < 1.0
    assert market.expected_result_count(s) == pytest.approx(UNIVERSE_SIZES[s.universe] * rate)


def test_loosest_scan_stays_within_the_universe() -> None:
    """With every filter off the expected count is positive and at most the universe size."""
    for universe in Universe:
        loose = scan(
            universe=universe,
            min_price=0.0,
            max_price=1e6,
            min_avg_volume=0.0,
            min_abs_change_pct=0.0,
            n_extra_filters=0,
        )
        assert 0.0 < market.expected_result_count(loose) <= UNIVERSE_SIZES[universe]


@pytest.mark.parametrize(
    ("looser", "stricter"),
    [
        ({"min_price": 5.0, "max_price": 500.0}, {"min_price": 20.0, "max_price": 200.0}),
        ({"n_extra_filters": 1}, {"n_extra_filters": 4}),
        ({"min_avg_volume": 5e5}, {"min_avg_volume": 5e6}),
        ({"min_market_cap_musd": 0.0}, {"min_market_cap_musd": 10_000.0}),
        ({"min_abs_change_pct": 2.0}, {"min_abs_change_pct": 10.0}),
        ({"min_relative_volume": 0.0}, {"min_relative_volume": 2.0}),
        ({"rsi_min": 30.0, "rsi_max": 70.0}, {"rsi_min": 40.0, "rsi_max": 60.0}),
        ({"strategy": "momentum"}, {"strategy": "earnings_drift"}),
    ],
)
def test_stricter_filter_lowers_expected_count(
    looser: dict[str, Any], stricter: dict[str, Any]
) -> None:
    """Tightening any one filter lowers the expected result count."""
    assert market.expected_result_count(scan(**stricter)) < market.expected_result_count(
        scan(**looser)
    )


def test_price_distribution_differs_by_universe() -> None:
    """Sub-dollar prices are common among crypto coins and rare in the S&P 500."""
    band = {"min_price": 0.0001, "max_price": 1.0}
    crypto = passes(scan(universe=Universe.CRYPTO_TOP200, **band)).price[0]
    stocks = passes(scan(universe=Universe.SP500, **band)).price[0]
    assert crypto > 0.2
    assert stocks < 0.01


def test_volatility_raises_move_and_relative_volume_pass_rates() -> None:
    """A higher VIX lets more symbols through the move, relative-volume and extreme-RSI filters."""
    strict = {"min_abs_change_pct": 5.0, "min_relative_volume": 2.0, "rsi_min": 0.0, "rsi_max": 30}
    calm, fearful = (
        passes(scan(volatility_index=14.0, **strict)),
        passes(scan(volatility_index=35.0, **strict)),
    )
    assert fearful.move[0] > calm.move[0]
    assert fearful.relvol[0] > calm.relvol[0]
    assert fearful.rsi[0] > calm.rsi[0]


def test_move_filter_passes_more_near_the_open_than_midday() -> None:
    """Symbols move more right after the open, so a move filter passes more of them."""
    strict = {"min_abs_change_pct": 5.0, "min_relative_volume": 2.0}
    at_open, midday = passes(scan(timestamp=OPENING, **strict)), passes(scan(**strict))
    assert at_open.move[0] > midday.move[0]
    assert at_open.relvol[0] > midday.relvol[0]


@pytest.mark.parametrize(
    ("faster", "slower"),
    [
        ({"universe": Universe.SP500}, {"universe": Universe.RUSSELL2000}),
        ({"timeframe": Timeframe.D1}, {"timeframe": Timeframe.M1}),
        ({"lookback_bars": 20}, {"lookback_bars": 400}),
        ({"timestamp": MIDDAY}, {"timestamp": OPENING}),
    ],
)
def test_duration_grows_with_work_and_provider_load(
    faster: dict[str, Any], slower: dict[str, Any]
) -> None:
    """More symbols, finer bars, longer lookback and the opening rush all lengthen a scan."""
    assert market.expected_duration_s(scan(**slower)) > market.expected_duration_s(scan(**faster))


def test_expected_duration_is_capped_at_the_timeout() -> None:
    """Whole-market one-minute scans over 500 bars hit the timeout and no more."""
    heavy = scan(universe=Universe.US_ALL, timeframe=Timeframe.M1, lookback_bars=500)
    assert market.expected_duration_s(heavy) == market.TIMEOUT_S
    assert market.draw_outcome(heavy, np.random.default_rng(0)).duration_s <= market.TIMEOUT_S


def test_draw_outcome_is_a_valid_outcome_and_deterministic_for_a_seed() -> None:
    """Same generator seed, same outcome; the outcome passes ScanOutcome's own validation."""
    s = scan()
    first = market.draw_outcome(s, np.random.default_rng(42))
    assert first == market.draw_outcome(s, np.random.default_rng(42))
    decoded = msgspec.json.decode(msgspec.json.encode(first), type=ScanOutcome)
    assert decoded == first
    assert 0 <= first.result_count <= UNIVERSE_SIZES[s.universe]


def test_counts_are_overdispersed_around_the_mean_and_capped() -> None:
    """Negative-binomial draws: mean near the expectation, variance above it, cap respected."""
    rng = np.random.default_rng(1)
    mean = np.full(40_000, 20.0)
    counts = market.draw_counts(mean, np.full(40_000, 101.0), rng)
    assert counts.mean() == pytest.approx(20.0, rel=0.03)
    assert counts.var() > 2.0 * counts.mean()
    capped = market.draw_counts(np.full(1000, 500.0), np.full(1000, 101.0), rng)
    assert capped.max() == 101


def test_duration_noise_is_lognormal_around_the_expectation() -> None:
    """The drawn durations' median is the noiseless duration; their log spread is the sigma."""
    rng = np.random.default_rng(2)
    drawn = market.draw_durations(np.full(40_000, 20.0), rng)
    assert np.median(drawn) == pytest.approx(20.0, rel=0.02)
    assert np.log(drawn).std() == pytest.approx(market.DURATION_SIGMA, rel=0.05)


def test_scan_without_timestamp_is_refused() -> None:
    """The ground truth never falls back to the clock: a scan must say when it ran."""
    with pytest.raises(ValueError, match="no timestamp"):
        market.expected_result_count(scan(timestamp=None))
