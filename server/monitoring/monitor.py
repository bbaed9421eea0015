"""One worker's monitoring: drift counts flushed to the store, and the scheduled jobs.

Two background tasks, both off the request path:

- every `flush_s`, the worker's `DriftCounter` is binned and added to the store
  (mergeable counts; while the store is down they are kept, merged per minute, and added
  at the next flush that succeeds), and the worker's own health gauges are set (store up,
  config age);
- every `interval_s`, the worker that holds the store lease "monitoring" (one worker of
  one replica at a time; the lease moves on if it stops renewing) recomputes the accuracy
  rollups of the last `RECOMPUTE` (prediction rows that land late are picked up), prunes
  monitoring rows older than the retention, and refreshes the accuracy and drift gauges;
  every `importance_interval_s` it also measures importance drift (nDCG, in a thread) on
  the newest labelled outcomes of the version in service.

The read API (accuracy, drift) answers from the store on any worker, so every worker and
replica agrees. Drift thresholds (per version and window size; one size for every window
beyond the largest the design effects measured) come with the manifest, calibrated at
export. For a version exported without them they are calibrated in a thread by the first
worker that needs them and kept in the store (`drift_thresholds`), so the fleet
calibrates each once; every worker also keeps them in memory.

With monitoring switched off (`SCANOPT_MONITORING=off`) only the worker's health gauges
are kept up to date: nothing counts drift or records history, and no scheduled job runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import msgspec
import numpy as np

from server.domain.artifact import MANIFEST_FILE, MODELS_DIR, Manifest, Thresholds
from server.domain.features import encode_scans
from server.errors import StoreUnavailableError
from server.monitoring.accuracy import WINDOWS, report_groups
from server.monitoring.counts import DriftCounter
from server.monitoring.drift import (
    FALSE_ALARM_RATE,
    MIN_ROWS,
    Reference,
    calibrate,
    evaluate,
    shipped_thresholds,
)
from server.monitoring.gauges import MonitoringGauges
from server.monitoring.history import HistoryRecorder
from server.monitoring.importance import NDCG_THRESHOLD, Run, ndcg, permutation_importances
from server.monitoring.schemas import (
    AccuracyReport,
    BusinessReport,
    DriftReport,
    DriftSeries,
    ImportanceReport,
)
from server.store.interface import Store
from server.store.monitoring import DriftCount, ImportanceResult

__all__ = ["BUSINESS_WINDOWS", "LEASE", "RECOMPUTE", "Monitor", "MonitorSettings"]

_LOG = logging.getLogger(__name__)
LEASE: Final = "monitoring"
# Outcomes whose prediction row lands more than this late are not counted.
RECOMPUTE: Final = timedelta(minutes=10)
_MANIFEST = msgspec.json.Decoder(Manifest)
_THRESHOLDS = msgspec.json.Decoder(Thresholds)
# Drift counts a worker keeps while the store is down: one per (minute, version, column,
# bin), a few hundred a minute, so hours of an outage.
_UNWRITTEN_CAPACITY: Final = 100_000
BUSINESS_WINDOWS: Final = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}


class MonitorSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How often the jobs run, the drift window, retention and the labelled minimum."""

    interval_s: float = 30.0
    flush_s: float = 5.0
    drift_window_minutes: int = 60
    retention_days: int = 30
    min_labelled: int = 30
    importance_interval_s: float = 3600.0
    # Newest labelled outcomes (of the last day) the importances are measured on.
    importance_rows: int = 1000
    importance_min_rows: int = 200
    # Off: health gauges only (no drift counting, no history, no scheduled jobs).
    enabled: bool = True


class Monitor:
    """Drift counting, scheduled monitoring jobs and the monitoring read API of one worker."""

    def __init__(
        self,
        store: Store,
        gauges: MonitoringGauges,
        artifacts: Path,
        settings: MonitorSettings,
        *,
        current: Callable[[], Manifest | None],
        run: Callable[[], Run | None] = lambda: None,
        config_loaded: Callable[[], Mapping[str, float]] = dict,
        history: HistoryRecorder | None = None,
    ) -> None:
        self.store = store
        self.gauges = gauges
        self.settings = settings
        self.counter = DriftCounter()
        self._artifacts = artifacts
        self._current = current
        self._run = run
        self._importance_due = 0.0
        # Why there is no result yet, as this worker last found (other workers: the rule).
        self._importance_note = (
            f"not computed yet: it needs at least {settings.importance_min_rows} labelled "
            f"outcomes of the last day, and runs every {settings.importance_interval_s:g} s"
        )
        self._config_loaded = config_loaded
        self._history = history if settings.enabled else None
        self._manifests: dict[str, Manifest | None] = {}
        self._references: dict[str, tuple[Manifest, Reference]] = {}
        self._thresholds: dict[tuple[str, str, int], Thresholds] = {}
        self._holder = f"{socket.gethostname()}:{os.getpid()}"
        # Batches a flush could not write, oldest first, each with its flush id.
        self._unwritten: list[tuple[str, list[DriftCount]]] = []
        self._tasks: list[asyncio.Task[None]] = []

    # --- manifests and references --------------------------------------------------------

    def manifest(self, version: str) -> Manifest | None:
        """The manifest of `version` (the one in service, or read from artifacts/)."""
        current = self._current()
        if current is not None and current.version == version:
            return current
        if version not in self._manifests:
            path = self._artifacts / MODELS_DIR / version / MANIFEST_FILE
            try:
                self._manifests[version] = _MANIFEST.decode(path.read_bytes())
            except (OSError, msgspec.ValidationError, msgspec.DecodeError):
                self._manifests[version] = None
        return self._manifests[version]

    def reference(self, version: str) -> Reference | None:
        """The reference of `version`, rebuilt when its manifest is another one than the
        reference was built from (the version in service rewritten in place and reloaded,
        as `just drift-calibrate` does)."""
        manifest = self.manifest(version)
        if manifest is None:
            return None
        kept = self._references.get(version)
        if kept is None or kept[0] is not manifest:
            reference = Reference.of(manifest)
            self._references[version] = (manifest, reference)
            if manifest.drift is None:
                _LOG.warning("drift thresholds of %s: %s", version, reference.calibration_note)
            return reference
        return kept[1]

    async def thresholds(self, version: str, rows: int) -> Thresholds | None:
        """Thresholds for windows of `rows` rows (calibrated in a thread once, then cached)."""
        reference = self.reference(version)
        if reference is None:
            return None
        key = (version, reference.method, reference.calibration_rows(rows))
        if key not in self._thresholds:
            self._thresholds[key] = await self._kept_thresholds(reference, key[2])
        return self._thresholds[key]

    async def _kept_thresholds(self, reference: Reference, rows: int) -> Thresholds:
        """From the manifest if the export calibrated them, else from the store if a worker
        calibrated them already, else calibrated and kept."""
        manifest = self.manifest(reference.version)
        shipped = shipped_thresholds(
            None if manifest is None else manifest.drift_thresholds, reference, rows
        )
        if shipped is not None:
            return shipped
        with contextlib.suppress(StoreUnavailableError, msgspec.DecodeError):
            kept = await self.store.drift_thresholds(reference.version, rows, reference.method)
            if kept is not None:
                return _THRESHOLDS.decode(kept)
        thresholds = await asyncio.to_thread(calibrate, reference, rows)
        with contextlib.suppress(StoreUnavailableError):
            await self.store.keep_drift_thresholds(
                reference.version,
                rows,
                reference.method,
                msgspec.json.encode(thresholds).decode(),
            )
        return thresholds

    # --- the read API -------------------------------------------------------------------

    async def accuracy(
        self, window: str, version: str | None = None, now: datetime | None = None
    ) -> AccuracyReport:
        """Online accuracy over `window` (a key of WINDOWS), per version and arm."""
        until = now or datetime.now(UTC)
        span = WINDOWS[window]
        since = until - (span or timedelta(days=self.settings.retention_days))
        rows = await self.store.accuracy(since, until + timedelta(minutes=1), version)
        training = {}
        for v in {r.version for r in rows}:
            manifest = self.manifest(v)
            training[v] = manifest.metrics if manifest is not None else {}
        groups = report_groups(rows, training, self.settings.min_labelled)
        return AccuracyReport(
            window=window,
            since=since,
            until=until,
            min_labelled=self.settings.min_labelled,
            groups=groups,
        )

    async def business(self, window: str, now: datetime | None = None) -> BusinessReport:
        """Business figures per arm over `window` (a key of BUSINESS_WINDOWS), by arrival."""
        until = now or datetime.now(UTC)
        since = until - BUSINESS_WINDOWS[window]
        arms = await self.store.business(since, until)
        return BusinessReport(window=window, since=since, until=until, arms=arms)

    async def drift(
        self,
        window_minutes: int | None = None,
        version: str | None = None,
        now: datetime | None = None,
    ) -> DriftReport:
        """Drift of every column of `version` (default: the one in service)."""
        minutes = window_minutes or self.settings.drift_window_minutes
        until = now or datetime.now(UTC)
        since = until - timedelta(minutes=minutes)
        current = self._current()
        name = version or (current.version if current is not None else None)

        def empty(note: str, n: int = 0) -> DriftReport:
            return DriftReport(
                version=name,
                window_minutes=minutes,
                since=since,
                until=until,
                n=n,
                false_alarm_rate=FALSE_ALARM_RATE,
                alarm=False,
                columns=[],
                note=note,
            )

        if name is None:
            return empty("no model version is loaded")
        reference = self.reference(name)
        if reference is None:
            return empty(f"version {name!r} has no manifest under {self._artifacts}")
        counts = await self.store.drift_counts(name, since, until + timedelta(minutes=1))
        n = max((sum(bins.values()) for bins in counts.values()), default=0)
        if n < MIN_ROWS:
            return empty(f"not enough data (n = {n}); drift needs at least {MIN_ROWS} rows", n)
        thresholds = await self.thresholds(name, n)
        assert thresholds is not None  # the reference exists
        columns = evaluate(reference, counts, thresholds)
        return DriftReport(
            version=name,
            window_minutes=minutes,
            since=since,
            until=until,
            n=n,
            false_alarm_rate=FALSE_ALARM_RATE,
            alarm=any(c.alarm for c in columns),
            columns=columns,
            calibration=reference.calibration_note,
        )

    async def drift_history(
        self, since: datetime, until: datetime, step: timedelta, version: str | None = None
    ) -> tuple[str | None, list[DriftSeries]]:
        """Per column, its worst score over that score's threshold in each slice of `step`
        from `since` (None where a slice holds fewer than MIN_ROWS rows); above 1 alarms."""
        current = self._current()
        name = version or (current.version if current is not None else None)
        reference = None if name is None else self.reference(name)
        if name is None or reference is None:
            return name, []
        slices = await self.store.drift_series(name, since, until, step)
        starts = _starts(since, until, step)
        ratios: dict[str, list[float | None]] = {c.name: [] for c in reference.columns}
        for start in starts:
            counts = slices.get(start, {})
            n = max((sum(bins.values()) for bins in counts.values()), default=0)
            found = {}
            if n >= MIN_ROWS:
                thresholds = await self.thresholds(name, n)
                assert thresholds is not None  # the reference exists
                found = {c.column: c for c in evaluate(reference, counts, thresholds)}
            for column in reference.columns:
                drift = found.get(column.name)
                ratios[column.name].append(None if drift is None else drift.worst_ratio)
        return name, [
            DriftSeries(feature=feature, ratio=values)
            for feature, values in ratios.items()
            if any(v is not None for v in values)
        ]

    # --- jobs ------------------------------------------------------------------------------

    async def flush(self, now: datetime | None = None) -> int:
        """Bin what the counter kept and add it to the store; counts written."""
        at = now or datetime.now(UTC)
        references = {}
        pending = self.counter.versions()
        for version in pending:
            reference = self.reference(version)
            if reference is not None:
                references[version] = reference
        new = self.counter.drain(references, at)
        if new:
            self._unwritten.append((uuid.uuid4().hex, new))
        rollups = [] if self._history is None else self._history.take(at)
        written = 0
        try:
            # Oldest first, each batch under its own flush id: a batch whose COMMIT broke
            # may be stored already, and the store adds a flush id's counts only once.
            while self._unwritten:
                flush_id, batch = self._unwritten[0]
                await self.store.add_drift_counts(batch, flush_id)
                self._unwritten.pop(0)
                written += len(batch)
            if rollups:
                await self.store.write_rollups(rollups)
            if not written and not rollups:
                await self.store.schema_version()  # nothing to write: still ask the store
            if self._history is not None:
                self._history.written()
            self.gauges.store_up.set(1)
        except StoreUnavailableError as exc:
            self.gauges.store_up.set(0)
            # Kept for the next flush (each count keeps its minute), the oldest counts
            # first to go beyond the bound.
            lost = sum(len(batch) for _, batch in self._unwritten) - _UNWRITTEN_CAPACITY
            dropped = max(0, lost)
            while lost > 0:
                flush_id, batch = self._unwritten[0]
                if len(batch) <= lost:
                    self._unwritten.pop(0)
                    lost -= len(batch)
                else:
                    batch = sorted(batch, key=lambda c: c.bucket_start)
                    self._unwritten[0] = (flush_id, batch[lost:])
                    lost = 0
            _LOG.warning(
                "drift counts not written (%d kept for the next flush, %d lost): %s",
                sum(len(batch) for _, batch in self._unwritten),
                dropped,
                exc,
            )
            return 0
        wall = time.time()
        for experiment, loaded in self._config_loaded().items():
            self.gauges.config_age.labels(experiment).set(max(0.0, wall - loaded))
        return written

    async def run_jobs(self, now: datetime | None = None) -> bool:
        """The scheduled work, if this worker holds the lease; True when it ran."""
        at = now or datetime.now(UTC)
        if not await self.store.acquire_lease(
            LEASE, self._holder, at, 3 * self.settings.interval_s
        ):
            return False
        await self.store.refresh_accuracy(at - RECOMPUTE, at + timedelta(minutes=1))
        await self.store.prune(at - timedelta(days=self.settings.retention_days))
        for window in WINDOWS:
            report = await self.accuracy(window, now=at)
            self.gauges.accuracy(window, report.groups)
        drift = await self.drift(now=at)
        if drift.version is not None and drift.columns:
            self.gauges.drift(drift.version, drift.columns)
        for window in BUSINESS_WINDOWS:
            business = await self.business(window, now=at)
            for arm in business.arms:
                if arm.empty_rate is not None:
                    self.gauges.business_empty_rate.labels(arm.arm, window).set(arm.empty_rate)
        if time.monotonic() >= self._importance_due:
            self._importance_due = time.monotonic() + self.settings.importance_interval_s
            result = await self.measure_importance(at)
            if result is not None:
                self.gauges.importance_ndcg.labels(result.version).set(result.ndcg)
        return True

    async def measure_importance(self, now: datetime | None = None) -> ImportanceResult | None:
        """Importance drift of the version in service, stored; None without enough rows."""
        at = now or datetime.now(UTC)
        manifest, run = self._current(), self._run()
        if manifest is None or run is None:
            return None
        rows = await self.store.labelled(
            manifest.version,
            at - timedelta(days=1),
            at + timedelta(minutes=1),
            self.settings.importance_rows,
        )
        if len(rows) < self.settings.importance_min_rows:
            self._importance_note = (
                f"not enough data (n = {len(rows)}): importance drift needs at least "
                f"{self.settings.importance_min_rows} labelled outcomes of the last day"
            )
            return None
        features = encode_scans([scan for scan, _, _ in rows], at)
        counts = np.asarray([c for _, c, _ in rows], dtype=np.float64)
        durations = np.asarray([d for _, _, d in rows], dtype=np.float64)
        recent = await asyncio.to_thread(permutation_importances, run, features, counts, durations)
        by_target = {}
        for target, values in recent.items():
            score = ndcg(manifest.importances.get(target, {}), values)
            if score is not None:
                by_target[target] = score
        if not by_target:
            self._importance_note = (
                f"the manifest of {manifest.version} has no permutation importances to compare"
            )
            return None
        result = ImportanceResult(
            version=manifest.version,
            computed_at=at,
            n=len(rows),
            ndcg=sum(by_target.values()) / len(by_target),
            by_target=by_target,
        )
        await self.store.record_importance(result)
        return result

    async def importance(self, version: str | None = None) -> ImportanceReport:
        """The latest importance-drift result of `version` (default: the one in service)."""
        current = self._current()
        name = version or (current.version if current is not None else None)
        result = None if name is None else await self.store.latest_importance(name)
        if result is None:
            return ImportanceReport(
                version=name,
                computed_at=None,
                n=0,
                ndcg=None,
                threshold=NDCG_THRESHOLD,
                violation=False,
                by_target={},
                note=self._importance_note,
            )
        return ImportanceReport(
            version=result.version,
            computed_at=result.computed_at,
            n=result.n,
            ndcg=result.ndcg,
            threshold=NDCG_THRESHOLD,
            violation=result.ndcg < NDCG_THRESHOLD,
            by_target=result.by_target,
        )

    async def _every(self, seconds: float, job: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                result = job()
                if asyncio.iscoroutine(result):
                    await result
            except StoreUnavailableError as exc:
                self.gauges.store_up.set(0)
                _LOG.warning("monitoring job skipped, the store is unavailable: %s", exc)
            except Exception:  # never let a monitoring task die
                _LOG.exception("monitoring job crashed")

    async def probe(self) -> bool:
        """Ask the store once and set `scanopt_store_up` (at start-up: true from the start)."""
        try:
            await self.store.schema_version()
        except StoreUnavailableError:
            self.gauges.store_up.set(0)
            return False
        self.gauges.store_up.set(1)
        return True

    def start(self) -> None:
        """Start the flush and job tasks (in the worker's startup, after fork)."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._every(self.settings.flush_s, self.flush))]
        if self.settings.enabled:
            self._tasks.append(
                loop.create_task(self._every(self.settings.interval_s, self.run_jobs))
            )

    async def stop(self) -> None:
        """Stop the tasks and flush the last counts."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(StoreUnavailableError):
            await self.flush()


def _starts(since: datetime, until: datetime, step: timedelta) -> list[datetime]:
    """The slice starts of [since, until) in steps of `step` (as the store groups them)."""
    starts, start = [], since
    while start < until:
        starts.append(start)
        start += step
    return starts
