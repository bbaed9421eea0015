"""Many simulated users at once against one server, and the simulation's own tally.

Users are independent, so each runs start to end in a worker thread (the Python client is
synchronous and thread-safe); each has its own random generator seeded by (seed, index),
so what a user does depends only on the seed and the service's answers, not on thread
timing. The tally per arm is what the simulation itself saw, to be checked against what
the server's report says.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import date
from typing import Final

import msgspec
import numpy as np

from bench.simulation.people import draw_people
from bench.simulation.scanner import UserLog, simulate_user
from bench.simulation.shifts import SHIFTS
from bench.simulation.timeline import Calendar
from server.client import ScanoptClient
from server.domain.scan import Scan
from train.habits import sample_scans

__all__ = ["ArmTally", "SimConfig", "SimResult", "run_simulation", "tally"]

POOL_SIZE: Final = 20_000  # habit scans people's repertoires are drawn from


class SimConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How big a simulation to run."""

    users: int = 2000
    days: int = 5  # trading days of the experiment
    pre_days: int = 5  # trading days of history before it
    pre_share: float = 0.5  # users who have that history
    seed: int = 7
    threads: int = 24
    timeout_s: float = 30.0  # per request; the server is busy, not slow
    shift: str = "none"  # a name of bench.simulation.shifts.SHIFTS


class ArmTally(msgspec.Struct, frozen=True, kw_only=True):
    """The simulation's own counts for one arm."""

    users: int
    sessions: int
    scans: int
    empty_scans: int
    scans_in_range: int
    session_time_s: float
    suggestions_applied: int
    returned: int

    @property
    def empty_rate(self) -> float:
        return self.empty_scans / self.scans if self.scans else float("nan")


class SimResult(msgspec.Struct, frozen=True, kw_only=True):
    """Every user's log, the calendar used, and the request count."""

    users: list[UserLog]
    calendar: Calendar
    requests: int
    failures: list[str]


def tally(users: list[UserLog]) -> dict[str, ArmTally]:
    """Counts per arm ("none" for users the service put in no arm)."""
    arms: dict[str, list[UserLog]] = {}
    for log in users:
        arms.setdefault(log.arm or "none", []).append(log)
    return {
        arm: ArmTally(
            users=len(logs),
            sessions=sum(u.sessions for u in logs),
            scans=sum(u.scans for u in logs),
            empty_scans=sum(u.empty_scans for u in logs),
            scans_in_range=sum(u.scans_in_range for u in logs),
            session_time_s=sum(u.session_time_s for u in logs),
            suggestions_applied=sum(u.suggestions_applied for u in logs),
            returned=sum(u.days_active > 1 for u in logs),
        )
        for arm, logs in sorted(arms.items())
    }


def _pool(seed: int) -> list[Scan]:
    return sample_scans(np.random.default_rng([seed, 0]), POOL_SIZE)


def run_simulation(
    url: str,
    config: SimConfig,
    *,
    today: date,
    on_user_done: Callable[[UserLog], None] | None = None,
) -> SimResult:
    """Simulate `config.users` users against the server at `url`; failures are collected."""
    rng = np.random.default_rng([config.seed, 1])
    calendar = Calendar.build(today, config.days, config.pre_days, rng, SHIFTS[config.shift])
    people = draw_people(
        config.users,
        rng,
        _pool(config.seed),
        days=config.days,
        pre_days=config.pre_days,
        pre_share=config.pre_share,
        run_tag=str(config.seed),
    )
    logs: list[UserLog] = []
    failures: list[str] = []
    # Strict: a lost event or feedback is a failed user here, not a count in the background,
    # so the report is computed from everything the users did.
    with (
        ScanoptClient(url, timeout_s=config.timeout_s, retries=3, strict=True) as client,
        ThreadPoolExecutor(config.threads, thread_name_prefix="sim-user") as pool,
    ):
        futures = {
            pool.submit(simulate_user, client, person, calendar, config.seed): person
            for person in people
        }
        for future in as_completed(futures):
            try:
                log = future.result()
            except Exception as exc:  # a failed user is reported, the others go on
                failures.append(f"{futures[future].user_id}: {exc}")
                continue
            logs.append(log)
            if on_user_done is not None:
                on_user_done(log)
    logs.sort(key=lambda u: u.user_id)
    return SimResult(
        users=logs,
        calendar=calendar,
        requests=sum(u.requests for u in logs),
        failures=failures,
    )
