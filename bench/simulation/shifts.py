"""Named changes of the simulated world, for `just simulate --shift NAME`.

The default market model (train.market, train.habits) stays as it is; a shift changes one
thing the service cannot see coming, so monitoring has something to catch:

- ``volatility``: a volatility regime: every day's VIX-like index is scaled so its typical
  ~18 becomes ~40 (capped at the schema's 90). Feature drift on volatility_index, and the
  market itself answers differently.
- ``slow_provider``: the market-data provider slows down: every scan takes
  `duration_factor` times as long. No input drifts; the duration predictions go wrong
  (online duration MAE and coverage).
- ``us_all``: the universe mix moves to ``us_all``: every session scans the whole market.
  Feature drift on the universe columns and symbol_bars.

`SHIFTS["none"]` is the default world.
"""

from __future__ import annotations

from typing import Final

import msgspec

from server.domain.scan import Scan, Universe

__all__ = ["NO_SHIFT", "SHIFTS", "Shift"]

_TYPICAL_VIX: Final = 18.0
_SHIFTED_VIX: Final = 40.0
_MAX_VIX: Final = 90.0


class Shift(msgspec.Struct, frozen=True, kw_only=True):
    """One change of the world, and the monitoring signal that should catch it."""

    name: str
    description: str
    vix_factor: float = 1.0
    duration_factor: float = 1.0
    universe: Universe | None = None
    # The drift columns that should alarm, or the accuracy target that should degrade.
    drifting: tuple[str, ...] = ()
    degraded: str | None = None

    def volatility(self, vix: float) -> float:
        """The day's index in this world."""
        return round(min(vix * self.vix_factor, _MAX_VIX), 2)

    def scan(self, scan: Scan) -> Scan:
        """A session's scan in this world."""
        if self.universe is None:
            return scan
        return msgspec.structs.replace(scan, universe=self.universe)

    def duration(self, seconds: float) -> float:
        """How long a scan takes in this world."""
        return round(seconds * self.duration_factor, 3)


NO_SHIFT: Final = Shift(name="none", description="the default market model")
SHIFTS: Final[dict[str, Shift]] = {
    s.name: s
    for s in (
        NO_SHIFT,
        Shift(
            name="volatility",
            description=f"VIX regime ~{_TYPICAL_VIX:g} -> ~{_SHIFTED_VIX:g}",
            vix_factor=_SHIFTED_VIX / _TYPICAL_VIX,
            drifting=("volatility_index",),
        ),
        Shift(
            name="slow_provider",
            description="market-data provider 2.5x slower: every scan takes 2.5x as long",
            duration_factor=2.5,
            degraded="duration_s",
        ),
        Shift(
            name="us_all",
            description="universe mix moves to us_all (every scan)",
            universe=Universe.US_ALL,
            drifting=("universe_is_us_all", "universe_size"),
        ),
    )
}
