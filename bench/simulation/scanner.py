"""One simulated user's sessions, run against the service through the Python client.

A session: the person starts from one of their usual scans (too strict, often), asks the
service (/v1/recommend with their desired range, as the scanner does for every scan; the
answer carries the arm and, for treatment, the prediction and suggestions), runs the scan,
and re-scans after an empty or out-of-range result until satisfied or out of tries.

- Outcomes come from the ground truth (train.market.draw_outcome), never from the model.
- Treatment: shown suggestions when the prediction misses the range; the best one is
  accepted with the person's acceptance probability (then /v1/predict gives the id of the
  scan actually run); a person who declines may heed a bad prediction and adjust first.
- Control: no ML content; the person adjusts by themselves after seeing the result.
- Events: scan_started, first_result (non-empty scans, when the first hit shows) and
  scan_completed with the desired range; feedback on the session's last scan for a share of
  sessions, satisfaction from how the session went (in range, tries, time).

Session time is simulated wall-clock time: scan durations, plus RETUNE_S per change made by
hand, plus APPLY_S per accepted suggestion. The first hit of a scan with k results shows
after the duration times the minimum of k uniform positions (symbols are scanned in turn).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

import msgspec
import numpy as np

from bench.simulation.people import (
    APPLY_S,
    HEED_BAD_PREDICTION,
    RETUNE_S,
    Person,
    loosen,
    overtighten,
    tighten,
)
from bench.simulation.shifts import NO_SHIFT, Shift
from bench.simulation.timeline import Calendar
from server.client import RecommendAnswer, ScanoptClient, new_event_id
from server.domain.scan import Scan
from server.store.records import FirstResult, ScanCompleted, ScanStarted
from train.market import draw_outcome

__all__ = ["RATE_SHARE", "UserLog", "simulate_user"]

RATE_SHARE: Final = 0.6  # sessions that end with a rating
MAX_HEEDS: Final = 2  # adjustments made on a bad prediction before running anyway
# Satisfaction (1-5) = round(BASE + GOT_RANGE or MISSED - per extra try - per minute over
# SLOW_AFTER_MIN + noise): how the session went, nothing about the arm itself.
SAT_BASE: Final = 3.3
SAT_GOT_RANGE: Final = 0.9
SAT_MISSED: Final = -1.3
SAT_PER_RETRY: Final = -0.3
SAT_PER_SLOW_MIN: Final = -0.05
SAT_SLOW_AFTER_MIN: Final = 5.0
SAT_NOISE: Final = 0.7
RETURN_BOOST: Final = (1.25, 0.75)  # engagement multiplier after a good / a failed session


class UserLog(msgspec.Struct, kw_only=True):
    """What the simulation itself counted for one user (to cross-check the server)."""

    user_id: str
    arm: str | None = None
    sessions: int = 0
    scans: int = 0
    empty_scans: int = 0
    scans_in_range: int = 0
    session_time_s: float = 0.0
    suggestions_applied: int = 0
    days_active: int = 0
    pre_scans: int = 0
    requests: int = 0


class _Session(msgspec.Struct, kw_only=True):
    """The running state of one session."""

    t: datetime
    tries: int = 0
    heeds: int = 0
    applied: int = 0
    good: bool = False
    last_id: str | None = None


def _seconds(rng: np.random.Generator, bounds: tuple[float, float]) -> timedelta:
    return timedelta(seconds=float(rng.uniform(*bounds)))


def _session_scan(person: Person, calendar: Calendar, day: int, rng: np.random.Generator) -> Scan:
    usual = person.scans[int(rng.integers(0, len(person.scans)))]
    scan = msgspec.structs.replace(
        usual,
        user_id=person.user_id,
        session_id=f"{person.user_id}-d{day:+d}",
        volatility_index=calendar.volatility(day),
    )
    scan = calendar.shift.scan(scan)
    return overtighten(scan, rng) if rng.random() < person.strictness else scan


class _Scanner:
    """A person's scanner: runs scans, asks the service, sends events and feedback."""

    def __init__(
        self,
        client: ScanoptClient,
        person: Person,
        rng: np.random.Generator,
        log: UserLog,
        shift: Shift = NO_SHIFT,
    ) -> None:
        self.shift = shift
        self.client = client
        self.person = person
        self.rng = rng
        self.log = log

    def _send(self, event: ScanStarted | FirstResult | ScanCompleted) -> None:
        self.client.send_event(event)
        self.log.requests += 1

    def _ask(self, scan: Scan) -> RecommendAnswer:
        low, high = self.person.desired
        answer = self.client.recommend(scan, min_results=low, max_results=high)
        self.log.requests += 1
        if self.log.arm is None:
            self.log.arm = answer.arm
        return answer

    def _run(
        self,
        scan: Scan,
        state: _Session,
        ids: tuple[str | None, str | None],
        suggestion: tuple[bool, bool],
    ) -> int:
        """Run `scan` at state.t: draw its outcome, send its events; the result count.

        `ids` are the prediction id and arm the service gave for this scan (None, None
        before the experiment); `suggestion` is (shown, applied).
        """
        prediction_id, arm = ids
        shown, applied = suggestion
        outcome = draw_outcome(scan, self.rng)
        count, duration = outcome.result_count, self.shift.duration(outcome.duration_s)
        base: dict[str, Any] = {
            "user_id": scan.user_id,
            "session_id": scan.session_id,
            "prediction_id": prediction_id,
            "arm": arm,
        }
        self._send(ScanStarted(event_id=new_event_id(), timestamp=state.t, **base))
        if count > 0:
            elapsed = duration * (1.0 - float(self.rng.random()) ** (1.0 / count))
            at = state.t + timedelta(seconds=elapsed)
            self._send(
                FirstResult(event_id=new_event_id(), timestamp=at, elapsed_s=elapsed, **base)
            )
        state.t += timedelta(seconds=duration)
        low, high = self.person.desired
        self._send(
            ScanCompleted(
                event_id=new_event_id(),
                timestamp=state.t,
                result_count=count,
                duration_s=duration,
                suggestion_shown=shown,
                suggestion_applied=applied,
                desired_min=low,
                desired_max=high,
                **base,
            )
        )
        if prediction_id is None:
            self.log.pre_scans += 1
        else:
            self.log.scans += 1
            self.log.empty_scans += count == 0
            self.log.scans_in_range += low <= count <= high
        return count

    def session(self, calendar: Calendar, day: int, *, service: bool) -> bool:
        """One session on `day`; True when it ended with a result in the desired range."""
        rng, person = self.rng, self.person
        low, high = person.desired
        start = calendar.session_start(day, rng)
        state = _Session(t=start)
        scan = _session_scan(person, calendar, day, rng)
        shown_any = False
        while True:
            scan = msgspec.structs.replace(scan, timestamp=state.t)
            run, shown, applied = scan, False, False
            ids: tuple[str | None, str | None] = (None, None)
            if service:
                answer = self._ask(scan)
                ids = (answer.prediction_id, answer.arm)
                current = answer.current
                if answer.ml_enabled and current is not None and not answer.current_in_range:
                    if answer.suggestions:
                        shown = shown_any = True
                        if rng.random() < person.accept:
                            state.t += _seconds(rng, APPLY_S)
                            run = msgspec.structs.replace(
                                answer.suggestions[0].scan, timestamp=state.t
                            )
                            predicted = self.client.predict(run)
                            self.log.requests += 1
                            ids = (predicted.prediction_id, predicted.arm)
                            applied = True
                            state.applied += 1
                            self.log.suggestions_applied += 1
                    if (
                        not applied
                        and state.heeds < MAX_HEEDS
                        and rng.random() < HEED_BAD_PREDICTION
                    ):
                        # Told it will miss: change it by hand before running it.
                        state.heeds += 1
                        state.t += _seconds(rng, RETUNE_S)
                        too_few = current.result_count.predicted < low
                        scan = loosen(scan, rng) if too_few else tighten(scan, rng)
                        continue
            count = self._run(run, state, ids, (shown, applied))
            state.last_id = ids[0]
            state.tries += 1
            state.good = low <= count <= high
            if state.good or state.tries >= person.max_tries:
                break
            state.t += _seconds(rng, RETUNE_S)
            scan = loosen(run, rng) if count < low else tighten(run, rng)
        if service:
            self.log.sessions += 1
            self.log.session_time_s += (state.t - start).total_seconds()
        if service and state.last_id is not None and rng.random() < RATE_SHARE:
            self._rate(state, shown_any, (state.t - start).total_seconds() / 60.0)
        return state.good

    def _rate(self, state: _Session, shown: bool, minutes: float) -> None:
        rng = self.rng
        mood = SAT_BASE + (SAT_GOT_RANGE if state.good else SAT_MISSED)
        mood += SAT_PER_RETRY * (state.tries - 1) + SAT_PER_SLOW_MIN * max(
            0.0, minutes - SAT_SLOW_AFTER_MIN
        )
        satisfaction = int(np.clip(np.rint(mood + rng.normal(0.0, SAT_NOISE)), 1, 5))
        # Usefulness of what the scanner offered: the suggestions when shown.
        use = 3.0 + (1.0 if shown and state.applied and state.good else 0.0)
        use -= 0.7 if shown and not state.good else 0.0
        usefulness = int(np.clip(np.rint(use + rng.normal(0.0, SAT_NOISE)), 1, 5))
        assert state.last_id is not None
        self.client.feedback(
            state.last_id,
            satisfaction=satisfaction,
            usefulness=usefulness,
            user_id=self.person.user_id,
        )
        self.log.requests += 1


def simulate_user(client: ScanoptClient, person: Person, calendar: Calendar, seed: int) -> UserLog:
    """The person's pre-experiment sessions (no service), then their experiment sessions."""
    rng = np.random.default_rng([seed, person.index])
    log = UserLog(user_id=person.user_id)
    scanner = _Scanner(client, person, rng, log, calendar.shift)
    for day in person.pre_days:
        scanner.session(calendar, day, service=False)
    good = scanner.session(calendar, person.first_day, service=True)
    log.days_active = 1
    for day in range(person.first_day + 1, calendar.days):
        boost = RETURN_BOOST[0] if good else RETURN_BOOST[1]
        if rng.random() < person.engagement * boost:
            good = scanner.session(calendar, day, service=True)
            log.days_active += 1
    return log
