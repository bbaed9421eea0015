"""The per-request decision: which arm a user is in and whether ML is on for them.

Each worker keeps the experiment configs in memory and reloads them from the store in
the background every `max_age_s / 2`, so a change (kill switch, coverage, weights) made
through any worker or replica reaches every worker within `max_age_s` (2 s by default)
while the request path never waits for the database. The worker that made a change
applies it at once.

Decision rules for the ML experiment:
- kill switch on: arm None, ml_enabled False for everyone (control behaviour, no error,
  no exposure logged: nobody is in a stopped experiment);
- outside the coverage: arm None, ml_enabled False;
- control: ML off; any other arm (treatment): ML on.

If a refresh fails (store down), the last good config stays in force, as feature-flag
SDKs do: a change cannot have been made meanwhile through a store nobody can reach. The
age of the oldest worker's config is exported for alerting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from server.errors import ExperimentNotFoundError, StoreUnavailableError
from server.experiments.assignment import arm_for_bucket, bucket_of, bucket_ranges
from server.experiments.config import CONTROL, DEFAULT_EXPERIMENT, ExperimentConfig
from server.experiments.metrics import GateMetrics

__all__ = ["ConfigSource", "Decision", "ExperimentGate"]

_LOG = logging.getLogger(__name__)
# The hash costs ~5 us in Python and users scan again and again: remember their buckets.
_REMEMBERED_BUCKETS = 50_000


class ConfigSource(Protocol):
    """Where the gate reads configs from: the store (server.store.interface.Store) is one."""

    async def list_experiments(self) -> Sequence[ExperimentConfig]:
        """Every experiment's config; StoreUnavailableError when it cannot be read."""
        ...


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What one request gets: its experiment, arm (None: not in it) and whether ML runs."""

    experiment: str
    arm: str | None
    ml_enabled: bool


class _Plan(msgspec.Struct, frozen=True):
    """A config with its bucket ranges and possible decisions worked out once."""

    config: ExperimentConfig
    ranges: list[tuple[int, int]]
    arms: tuple[str, ...]
    decisions: dict[str | None, Decision]


def _plan(config: ExperimentConfig) -> _Plan:
    decisions: dict[str | None, Decision] = {
        arm: Decision(
            experiment=config.name, arm=arm, ml_enabled=arm is not None and arm != CONTROL
        )
        for arm in (None, *config.arm_names)
    }
    if config.kill_switch:  # nobody is in a stopped experiment
        decisions = dict.fromkeys(decisions, decisions[None])
    ranges = bucket_ranges([a.weight for a in config.arms], config.coverage)
    return _Plan(config, ranges, config.arm_names, decisions)


class ExperimentGate:
    """Cached experiment configs for one worker, and the per-user decision."""

    def __init__(
        self,
        store: ConfigSource,
        metrics: GateMetrics,
        *,
        max_age_s: float,
        experiment: str = DEFAULT_EXPERIMENT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._experiment = experiment
        self._max_age_s = max_age_s
        self._clock = clock
        self._plans: dict[str, _Plan] = {}
        self._buckets: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    @property
    def experiment(self) -> str:
        """The name of the experiment that gates ML."""
        return self._experiment

    def config(self, name: str) -> ExperimentConfig:
        """The cached config of `name`, or ExperimentNotFoundError naming the known ones."""
        plan = self._plans.get(name)
        if plan is None:
            raise ExperimentNotFoundError(name, list(self._plans))
        return plan.config

    def accept(self, config: ExperimentConfig) -> None:
        """Use `config` now (this worker changed it); an older version is ignored."""
        current = self._plans.get(config.name)
        if current is None or current.config.version <= config.version:
            self._plans[config.name] = _plan(config)

    def decide(self, user_id: str) -> Decision:
        """The user's arm and whether ML is on for them; pure arithmetic, no I/O."""
        plan = self._plans.get(self._experiment)
        if plan is None:
            return Decision(experiment=self._experiment, arm=None, ml_enabled=False)
        if plan.config.kill_switch:
            return plan.decisions[None]
        bucket = self._bucket(plan.config.salt, user_id)
        return plan.decisions[arm_for_bucket(bucket, plan.arms, plan.ranges)]

    def _bucket(self, salt: str, user_id: str) -> int:
        key = (salt, user_id)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _REMEMBERED_BUCKETS:
                self._buckets.clear()  # forgetting costs one hash per user, nothing else
            bucket = self._buckets[key] = bucket_of(salt, user_id)
        return bucket

    async def refresh(self) -> None:
        """Reload every config from the store (raises StoreUnavailableError)."""
        configs = await self._store.list_experiments()
        plans = {}
        for config in configs:
            current = self._plans.get(config.name)
            # Keep the worked-out plan when nothing changed (the common case).
            unchanged = current is not None and current.config == config
            plans[config.name] = current if current is not None and unchanged else _plan(config)
        self._plans = plans
        self._metrics.config_loaded.set(self._clock())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._max_age_s / 2)
            try:
                await self.refresh()
            except StoreUnavailableError as exc:
                self._metrics.config_refresh_failures.inc()
                if not self._failing:
                    _LOG.warning("experiment config refresh failed, keeping the last: %s", exc)
                self._failing = True
                continue
            except Exception:  # never let the refresher die
                _LOG.exception("experiment config refresh crashed")
                continue
            if self._failing:
                _LOG.info("experiment config refresh recovered")
            self._failing = False

    async def start(self) -> None:
        """Load the configs (the store must be up) and start refreshing in the background."""
        await self.refresh()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
