"""Probation after a promotion, and the automatic rollback to the parent when it fails.

A version is on probation while `artifacts/current` names it after a promotion (not a
rollback: server.domain.alias records which), its manifest names a parent, it carries no
rollback mark, fewer than `minutes` have passed since the promotion (recorded beside the
pointer, so shared by every replica and kept across restarts) and fewer than `outcomes` of
its outcomes have been labelled since then. Every `interval_s` the
worker holding the store lease "probation" (one worker of one replica at a time) judges it
on what arrived since the promotion:

- accuracy, the monitoring alerts' conditions (server.monitoring.alerts.accuracy_alerts:
  online MAE over the plan's bar or over 1.2x the training MAE, 90% coverage outside
  0.85-0.95) once at least `min_labelled` outcomes are labelled, from the store's rollups
  (so every replica's outcomes count), each of them only when the new version is also
  worse than its parent on the traffic just before the promotion (relative_worse: MAE
  over 1.2x the parent's, or coverage 0.05 further out than the parent's on the side the
  band is left, by a one-sided z-test at ALPHA 0.01). A stretch of traffic harder than
  the training test split trips the absolute conditions for the parent too, and that is
  no reason to roll back. The parent's outcomes are those of the whole minutes up to and
  with the promotion's, over as long as the new version's, doubled until they are as
  many as the new version's (or span `minutes`). When the parent has fewer than
  `min_labelled` of them, the absolute conditions alone decide, and the rollback's log
  line says so;
- errors: the 5xx share of this replica's prediction requests (PREDICTION_ROUTES, merged
  over its workers) above the availability page's threshold (burn rate 14.4 on the 0.1%
  budget: 1.44%), once at least `min_requests` were answered since the promotion. Every
  worker samples these counters when it starts and at each check, so the lease holder
  compares with its last sample before the promotion (or its first, when it started
  later: the other workers' requests before that are not counted). Only the routes the
  model answers count: a store outage's 503s on events say nothing about the model.

When one trips, server.domain.alias.roll_back moves the alias back to the parent under the
lifecycle lock, only if it still names the failed version, so of all the workers and
replicas that might try, exactly one moves it and counts it; the parent is verified as a
worker would load it first. The failed version gets a rollback mark (never promoted again
unless by name), the move is logged in one line with the figures and thresholds and counted
(`scanopt_model_rollbacks_total{reason}`), and every worker follows through its watcher.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import os
import socket
import statistics
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import msgspec
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from server.domain.alias import RollbackMark, read_last_move, read_rollback_mark, roll_back
from server.domain.artifact import CURRENT_FILE, MANIFEST_FILE, MODELS_DIR, Manifest
from server.domain.versions import read_alias
from server.errors import ArtifactError, StoreUnavailableError
from server.monitoring.accuracy import ALL_ARMS, group_figures, merge_sums
from server.monitoring.alerts import (
    BURN_ALERTS,
    COVERAGE_BAND,
    MAE_BARS,
    SLO_BUDGETS,
    TRAINING_MAE_FACTOR,
    ActiveAlert,
    VersionAccuracy,
    accuracy_alerts,
)
from server.monitoring.figures import PREDICTION_ROUTES
from server.monitoring.schemas import AccuracyGroup, RegressionAccuracy
from server.settings import Settings
from server.store.interface import Store
from server.store.monitoring import AccuracySums

__all__ = [
    "ALPHA",
    "COVERAGE_MARGIN",
    "ERROR_SHARE",
    "LEASE",
    "MAE_MARGIN",
    "REASONS",
    "Probation",
    "ProbationMetrics",
    "ProbationSettings",
    "Subject",
    "relative_worse",
]

LEASE: Final = "probation"
# The counter's reasons, in the order a rollback names the first that tripped.
REASONS: Final = ("errors", "accuracy", "coverage")
# The availability SLO's fastest page: 5xx share above 14.4 x the 0.1% budget.
ERROR_SHARE: Final = BURN_ALERTS[0][1] * SLO_BUDGETS["availability"]
# The new version is worse than its parent when its MAE is over (1 + MAE_MARGIN) x the
# parent's, or its coverage further than COVERAGE_MARGIN from the parent's on the side the
# band is left, by a one-sided z-test at level ALPHA (over the normal quantile, 2.33).
ALPHA: Final = 0.01
MAE_MARGIN: Final = 0.2
COVERAGE_MARGIN: Final = 0.05
_Z: Final = statistics.NormalDist().inv_cdf(1 - ALPHA)
_MANIFEST: Final = msgspec.json.Decoder(Manifest)
_ALERT_REASON: Final = {
    "ScanoptAccuracyDegraded": "accuracy",
    "ScanoptCoverageOutOfBand": "coverage",
}


class ProbationSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Whether probation runs, how long it lasts and how much evidence it needs (each
    declared, with its default, once: on server.settings.Settings)."""

    enabled: bool
    outcomes: int
    minutes: float
    min_labelled: int
    min_requests: int
    interval_s: float

    @classmethod
    def of(cls, settings: Settings) -> ProbationSettings:
        return cls(
            enabled=settings.probation,
            outcomes=settings.probation_outcomes,
            minutes=settings.probation_minutes,
            min_labelled=settings.probation_min_labelled,
            min_requests=settings.probation_min_requests,
            interval_s=settings.monitor_interval_s,
        )


class ProbationMetrics:
    """`scanopt_model_rollbacks_total{reason}`: automatic rollbacks, by what tripped."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.rollbacks = Counter(
            "scanopt_model_rollbacks",
            "Automatic rollbacks of a promoted version to its parent, by the condition that "
            "tripped (errors, accuracy, coverage).",
            ["reason"],
            registry=registry,
        )
        for reason in REASONS:  # every series exists from the start, at 0
            self.rollbacks.labels(reason)


class Subject(msgspec.Struct, frozen=True, kw_only=True):
    """The version on probation: its parent, when the alias moved to it, its manifest."""

    version: str
    parent: str
    since: datetime
    manifest: Manifest


def prediction_requests(families: Iterable[Metric]) -> tuple[float, float]:
    """(answered, answered with a 5xx) on the prediction routes, summed over workers."""
    answered = failed = 0.0
    for family in families:
        for sample in family.samples:
            if sample.name != "scanopt_http_requests_total":
                continue
            if PREDICTION_ROUTES.fullmatch(sample.labels.get("route", "")):
                answered += sample.value
                if sample.labels.get("status", "").startswith("5"):
                    failed += sample.value
    return answered, failed


class Probation:
    """One worker's side of probation: the scheduled check and the rollback it may do."""

    def __init__(
        self,
        store: Store,
        metrics: ProbationMetrics,
        artifacts: Path,
        settings: ProbationSettings,
        *,
        render: Callable[[], bytes],
        follow: Callable[[], Awaitable[object]],
        verify: Callable[[Path, str], object],
        logger: logging.Logger,
        holder: str | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.settings = settings
        self._artifacts = artifacts
        self._render = render
        self._follow = follow
        self._verify = verify
        self._logger = logger
        # Who holds the lease: this process, on this host (as the monitoring lease).
        self._holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        # (when, answered, failed): this replica's prediction-request counters at each
        # check, lease or not, so a new lease holder has the counts from the promotion on.
        self._samples: collections.deque[tuple[datetime, float, float]] = collections.deque()
        # The probations (version, since) whose end or failed rollback is logged already.
        self._done: set[tuple[str, datetime]] = set()
        self._task: asyncio.Task[None] | None = None

    def subject(self, now: datetime | None = None) -> Subject | None:
        """The version on probation now, or None (file reads: call it off the loop)."""
        at = now or datetime.now(UTC)
        version = read_alias(self._artifacts)
        if version is None:
            return None
        try:
            moved_ns = (self._artifacts / CURRENT_FILE).stat().st_mtime_ns
            path = self._artifacts / MODELS_DIR / version / MANIFEST_FILE
            manifest = _MANIFEST.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError):
            return None  # the watcher refuses and reports such a version
        since = datetime.fromtimestamp(moved_ns / 1e9, UTC)
        move = read_last_move(self._artifacts)
        if move is not None and move.version == version:
            if move.kind == "rollback":
                return None  # going back to what served before is no promotion
            since = move.at
        if manifest.parent_version is None or at - since > timedelta(minutes=self.settings.minutes):
            return None
        if read_rollback_mark(self._artifacts, version) is not None:
            return None
        return Subject(
            version=version, parent=manifest.parent_version, since=since, manifest=manifest
        )

    async def check(self, now: datetime | None = None) -> str | None:
        """One probation run if this worker holds the lease; the rollback reason when this
        call rolled the version back, else None."""
        if not self.settings.enabled:
            return None
        at = now or datetime.now(UTC)
        answered, failed = await asyncio.to_thread(self._sample, at)
        if not await self.store.acquire_lease(
            LEASE, self._holder, at, 3 * self.settings.interval_s
        ):
            return None
        subject = await asyncio.to_thread(self.subject, at)
        if subject is None:
            return None
        key = (subject.version, subject.since)
        if key in self._done:
            return None
        start = subject.since.replace(second=0, microsecond=0)  # rollups are per minute
        rows = await self.store.accuracy(start, at + timedelta(minutes=1), subject.version)
        sums = merge_sums(rows)
        group = group_figures(sums, subject.manifest.metrics, 1) if sums is not None else None
        labelled = 0 if sums is None else sums.n
        accuracy = VersionAccuracy(
            version=subject.version,
            labelled=labelled,
            mae={t.target: t.mae for t in _targets(group) if t.mae is not None},
            training_mae={
                t.target: t.training_mae for t in _targets(group) if t.training_mae is not None
            },
            coverage={t.target: t.coverage for t in _targets(group) if t.coverage is not None},
        )
        alerts = accuracy_alerts([accuracy], self.settings.min_labelled)
        tripped: list[tuple[str, str]] = []
        if alerts and sums is not None:
            parent = await self._parent_sums(subject, start, at, sums.n)
            if parent.n < self.settings.min_labelled:
                note = (
                    f" (absolute conditions only: the parent {subject.parent} has "
                    f"{parent.n} labelled outcomes before the promotion, fewer than "
                    f"{self.settings.min_labelled})"
                )
                tripped = [(_ALERT_REASON[a.name], _describe(a, accuracy) + note) for a in alerts]
            else:
                for a in alerts:
                    worse = relative_worse(a.name, a.labels["target"], sums, parent)
                    if worse is not None:
                        tripped.append((_ALERT_REASON[a.name], _describe(a, accuracy) + worse))
        # The counters just before the promotion (or as early as this worker has them).
        before = [s for s in self._samples if s[0] <= subject.since]
        _, answered_then, failed_then = before[-1] if before else self._samples[0]
        requests, errors = int(answered - answered_then), int(failed - failed_then)
        if requests >= self.settings.min_requests and errors / requests > ERROR_SHARE:
            tripped.insert(
                0,
                (
                    "errors",
                    f"5xx share of prediction requests {errors / requests:.2%} ({errors} of "
                    f"{requests}) over {ERROR_SHARE:.2%}",
                ),
            )
        if tripped:
            return await self._roll_back(subject, tripped, labelled, requests, at)
        if labelled >= self.settings.outcomes:
            self._done.add(key)
            self._logger.info(
                "probation passed",
                extra={
                    "fields": {
                        "model_version": subject.version,
                        "labelled": labelled,
                        "requests": requests,
                        "since": subject.since.isoformat(),
                    }
                },
            )
        return None

    async def _parent_sums(
        self, subject: Subject, start: datetime, at: datetime, labelled: int
    ) -> AccuracySums:
        """The parent's sums over the recent traffic before the promotion: the whole
        minutes up to and with the promotion's, over the new version's span, doubled until
        they hold as many labelled outcomes as the new version's or span `minutes`."""
        end = start + timedelta(minutes=1)
        span = max(at + timedelta(minutes=1) - start, timedelta(minutes=1))
        longest = timedelta(minutes=self.settings.minutes)
        while True:
            rows = await self.store.accuracy(end - span, end, subject.parent)
            sums = merge_sums(rows) or _no_sums(subject.parent)
            if sums.n >= labelled or span >= longest:
                return sums
            span = min(2 * span, longest)

    def _sample(self, at: datetime) -> tuple[float, float]:
        """Keep this replica's prediction-request counters now (answered, failed)."""
        families = text_string_to_metric_families(self._render().decode())
        answered, failed = prediction_requests(families)
        self._samples.append((at, answered, failed))
        while self._samples and at - self._samples[0][0] > timedelta(
            minutes=self.settings.minutes, seconds=2 * self.settings.interval_s
        ):
            self._samples.popleft()
        return answered, failed

    async def _roll_back(
        self,
        subject: Subject,
        tripped: list[tuple[str, str]],
        labelled: int,
        requests: int,
        at: datetime,
    ) -> str | None:
        reason = min((r for r, _ in tripped), key=REASONS.index)
        detail = (
            "; ".join(text for _, text in tripped)
            + f" (on {labelled} labelled outcomes and {requests} prediction requests since "
            f"the promotion at {subject.since.isoformat(timespec='seconds')})"
        )
        mark = RollbackMark(
            rolled_back_at=at.isoformat(timespec="seconds"),
            to_version=subject.parent,
            reason=reason,
            detail=detail,
        )
        key = (subject.version, subject.since)
        try:
            moved = await asyncio.to_thread(
                roll_back, self._artifacts, subject.version, subject.parent, mark, self._verify
            )
        except (ArtifactError, OSError) as exc:
            self._done.add(key)  # said once; a person has to act
            why = exc.message if isinstance(exc, ArtifactError) else str(exc)
            self._logger.error(
                "model rollback failed",
                extra={
                    "fields": {
                        "model_version": subject.version,
                        "parent_version": subject.parent,
                        "reason": reason,
                        "detail": detail,
                        "error": why,
                    }
                },
            )
            return None
        self._done.add(key)
        if not moved:
            return None
        self.metrics.rollbacks.labels(reason).inc()
        self._logger.warning(
            f"model rolled back from {subject.version} to {subject.parent}: {detail}",
            extra={
                "fields": {
                    "event": "model_rolled_back",
                    "model_version": subject.version,
                    "parent_version": subject.parent,
                    "reason": reason,
                    "labelled": labelled,
                    "requests": requests,
                }
            },
        )
        await self._follow()  # this worker at once; the others on their next poll
        return reason

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval_s)
            try:
                await self.check()
            except StoreUnavailableError as exc:
                self._logger.warning("probation check skipped, the store is unavailable: %s", exc)
            except Exception:  # never let the probation task die
                self._logger.exception("probation check crashed")

    def start(self) -> None:
        """Start the scheduled check (in the worker's startup, after fork); off: nothing."""
        if self.settings.enabled and self._task is None:
            self._sample(datetime.now(UTC))  # the counters before this worker's traffic
            self._task = asyncio.get_running_loop().create_task(self._every())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _no_sums(version: str) -> AccuracySums:
    return AccuracySums(
        version=version,
        arm=ALL_ARMS,
        n=0,
        count_abs_err=0.0,
        count_sq_err=0.0,
        count_sum=0.0,
        count_sum_sq=0.0,
        count_covered=0,
        duration_abs_err=0.0,
        duration_sq_err=0.0,
        duration_sum=0.0,
        duration_sum_sq=0.0,
        duration_covered=0,
        brier_sum=0.0,
    )


def _target_sums(sums: AccuracySums, target: str) -> tuple[int, float, float, int]:
    """(n, sum of absolute errors, sum of squared errors, covered) of one target."""
    if target == "result_count":
        return sums.n, sums.count_abs_err, sums.count_sq_err, sums.count_covered
    return sums.n, sums.duration_abs_err, sums.duration_sq_err, sums.duration_covered


def relative_worse(alert: str, target: str, new: AccuracySums, parent: AccuracySums) -> str | None:
    """How the new version is worse than its parent on `target` for the tripped `alert`
    (ScanoptAccuracyDegraded or ScanoptCoverageOutOfBand), in words; None unless a
    one-sided z-test at ALPHA shows it worse by more than the margin.

    MAE: new MAE over (1 + MAE_MARGIN) x the parent's, the difference over its standard
    error (each side's variance of the absolute error is the mean squared error less the
    MAE squared). Coverage: new coverage further than COVERAGE_MARGIN from the parent's in
    the direction the band is left (the two proportions' unpooled standard error).
    """
    n1, abs1, sq1, cov1 = _target_sums(new, target)
    n2, abs2, sq2, cov2 = _target_sums(parent, target)
    if n1 == 0 or n2 == 0:
        return None
    if alert == "ScanoptCoverageOutOfBand":
        p1, p2 = cov1 / n1, cov2 / n2
        se = (p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2) ** 0.5
        gap = (p2 - p1 if p1 < COVERAGE_BAND[0] else p1 - p2) - COVERAGE_MARGIN
        what, theirs, margin = "coverage", f"{p2:.3f}", f"by more than {COVERAGE_MARGIN:g}"
    else:
        m1, m2 = abs1 / n1, abs2 / n2
        var1, var2 = max(sq1 / n1 - m1 * m1, 0.0), max(sq2 / n2 - m2 * m2, 0.0)
        factor = 1 + MAE_MARGIN
        se = (var1 / n1 + factor * factor * var2 / n2) ** 0.5
        gap = m1 - factor * m2
        what, theirs, margin = "MAE", f"{m2:.3g}", f"by more than {MAE_MARGIN:.0%}"
    z = gap / se if se > 0 else (math.inf if gap > 0 else 0.0)
    if z <= _Z:
        return None
    return (
        f", worse than the parent's {what} {theirs} {margin} on its {n2} outcomes before "
        f"the promotion (one-sided z {z:.1f} over {_Z:.2f}, alpha {ALPHA:g})"
    )


def _targets(group: AccuracyGroup | None) -> list[RegressionAccuracy]:
    return [] if group is None else [group.result_count, group.duration_s]


def _describe(alert: ActiveAlert, accuracy: VersionAccuracy) -> str:
    """One tripped condition in words, with its figure and thresholds."""
    target = alert.labels["target"]
    if alert.name == "ScanoptCoverageOutOfBand":
        low, high = COVERAGE_BAND
        return f"{target} 90% interval coverage {alert.value:.3f} outside {low}-{high}"
    over = []
    bar = MAE_BARS.get(target)
    if bar is not None and alert.value > bar:
        over.append(f"the plan's bar {bar:g}")
    training = accuracy.training_mae.get(target)
    if training is not None and alert.value > TRAINING_MAE_FACTOR * training:
        over.append(
            f"{TRAINING_MAE_FACTOR:g} x the training MAE {training:.3g} "
            f"({TRAINING_MAE_FACTOR * training:.3g})"
        )
    return f"{target} online MAE {alert.value:.3g} over " + " and ".join(over)
