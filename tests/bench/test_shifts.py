"""Named world shifts change only what they name, and the default world is untouched."""

from __future__ import annotations

from datetime import date

import numpy as np

from bench.simulation.shifts import NO_SHIFT, SHIFTS
from bench.simulation.timeline import Calendar
from server.domain.scan import Universe
from tests.server.store.records_factory import scan


def test_the_default_world_is_the_unshifted_calendar() -> None:
    """ "none" leaves the VIX path, the scans and the durations as the market model has them."""
    rng = [np.random.default_rng(5), np.random.default_rng(5)]
    plain = Calendar.build(date(2026, 3, 5), 5, 5, rng[0])
    assert Calendar.build(date(2026, 3, 5), 5, 5, rng[1], SHIFTS["none"]).vix == plain.vix
    assert NO_SHIFT.scan(scan()) == scan()
    assert NO_SHIFT.duration(3.25) == 3.25


def test_volatility_regime_moves_typical_vix_from_18_to_40() -> None:
    """A VIX of 18 becomes 40, and the schema's cap of 90 holds."""
    shift = SHIFTS["volatility"]
    assert shift.volatility(18.0) == 40.0
    assert shift.volatility(60.0) == 90.0
    calendar = Calendar.build(date(2026, 3, 5), 5, 5, np.random.default_rng(5), shift)
    assert min(calendar.vix) > 18.0


def test_slow_provider_and_us_all_change_one_thing_each() -> None:
    """slow_provider multiplies durations; us_all moves every scan to the whole market."""
    assert SHIFTS["slow_provider"].duration(2.0) == 5.0
    assert SHIFTS["slow_provider"].scan(scan()) == scan()
    assert SHIFTS["us_all"].scan(scan()).universe is Universe.US_ALL
    assert SHIFTS["us_all"].duration(2.0) == 2.0
