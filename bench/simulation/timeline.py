"""The simulated calendar: trading days before today, the market regime, session clocks.

The experiment runs over the `days` trading days (Monday to Friday) before today, and the
pre-experiment history over the `pre_days` trading days before those; day 0 is the
experiment's first day and day -1 the last one before it. Everything is in the past, so
event timestamps are honest "it happened then" times the server accepts (it refuses times
more than an hour ahead of its clock), while the whole calendar is replayed in minutes.

Sessions start in New York market hours, most right after the open (as in train.habits),
and every scan of a day shares that day's VIX-like index.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec
import numpy as np

from bench.simulation.shifts import NO_SHIFT, Shift
from server.domain.features import MARKET_TZ
from train.habits import vix_path

__all__ = ["Calendar", "trading_days_before"]

_OPEN_MINUTES = 9 * 60 + 30
# Leave the last hour of the session free so a session of re-scans ends before the close.
_LAST_START_MINUTES = 330.0


def trading_days_before(today: date, n: int) -> list[date]:
    """The `n` weekdays before `today`, oldest first."""
    days: list[date] = []
    day = today
    while len(days) < n:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days[::-1]


class Calendar(msgspec.Struct, frozen=True, kw_only=True):
    """Trading dates of the experiment (day 0..days-1) and before it (day -pre_days..-1)."""

    dates: tuple[date, ...]  # pre-experiment days first, then experiment days
    vix: tuple[float, ...]  # one per date
    pre_days: int
    # The world the scans run in (bench.simulation.shifts); the default market otherwise.
    shift: Shift = NO_SHIFT

    @classmethod
    def build(
        cls,
        today: date,
        days: int,
        pre_days: int,
        rng: np.random.Generator,
        shift: Shift = NO_SHIFT,
    ) -> Calendar:
        dates = trading_days_before(today, days + pre_days)
        path = vix_path(rng, len(dates))
        return cls(
            dates=tuple(dates),
            vix=tuple(shift.volatility(round(float(v), 2)) for v in path),
            pre_days=pre_days,
            shift=shift,
        )

    @property
    def days(self) -> int:
        """Experiment days."""
        return len(self.dates) - self.pre_days

    @property
    def experiment_start(self) -> datetime:
        """Midnight UTC of the experiment's first day."""
        return datetime.combine(self.dates[self.pre_days], datetime.min.time(), UTC)

    def _index(self, day: int) -> int:
        i = self.pre_days + day
        if not 0 <= i < len(self.dates):
            raise ValueError(f"day {day} is outside the calendar [{-self.pre_days}, {self.days})")
        return i

    def volatility(self, day: int) -> float:
        """The day's VIX-like index."""
        return self.vix[self._index(day)]

    def session_start(self, day: int, rng: np.random.Generator) -> datetime:
        """When a session on `day` starts (UTC): a third in the open rush, the rest spread."""
        if rng.random() < 0.35:
            minutes = float(min(rng.exponential(25.0), _LAST_START_MINUTES))
        else:
            minutes = float(rng.uniform(0.0, _LAST_START_MINUTES))
        local = datetime.combine(self.dates[self._index(day)], datetime.min.time(), MARKET_TZ)
        local += timedelta(minutes=_OPEN_MINUTES + minutes)
        return local.astimezone(UTC)
