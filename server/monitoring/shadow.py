"""Shadow figures: champion and shadow side by side, and an always-valid paired comparison.

Per labelled request both versions scored (server.store.shadow), d = |y - shadow| -
|y - champion| for each target (result count, duration). Its mean over the n pairs, with
standard error sqrt(var(d) / n), gets the asymptotic confidence sequence the experiment
report uses (server.analysis.sequential: valid at every n at once, tuned to be tightest
at `n_star` pairs), so the comparison may be read as often as anyone likes without
inflating its error rate and nobody picks a sample size in advance:

- "better": the whole (1 - alpha) sequence lies below 0 (the shadow's errors are smaller);
- "worse": it lies above 0;
- "undecided": it holds 0; "not enough data": fewer than `min_pairs` pairs.

Pairs of one user are not independent; the sequence treats requests as the units, so
with few heavy users it is optimistic (the retrain rule groups by user for that reason).

`ShadowMonitor` recomputes the comparison every interval on the worker holding the
"shadow" lease and sets the gauges (multiprocess_mode "mostrecent"):

    scanopt_shadow_pairs{champion, shadow}
    scanopt_shadow_mae{target, version, paired_with}   each version's MAE on the pairs
    scanopt_shadow_difference{target, champion, shadow, bound}   estimate, lower, upper
    scanopt_shadow_verdict{target, champion, shadow}   -1 better, 0 undecided, 1 worse
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec
from prometheus_client import CollectorRegistry, Gauge

from server.analysis.sequential import (
    DEFAULT_N_STAR,
    always_valid_p_value,
    sequence_half_width,
)
from server.domain.versions import ShadowComparison, ShadowReport, ShadowTarget
from server.errors import StoreUnavailableError
from server.monitoring.accuracy import not_enough
from server.store.interface import Store
from server.store.shadow import ShadowSums

__all__ = [
    "ALPHA",
    "EVER",
    "ShadowGauges",
    "ShadowMonitor",
    "compare",
    "read_report",
    "target_comparison",
]

_LOG = logging.getLogger(__name__)
ALPHA: Final = 0.05
# The comparison covers every pair ever logged: the sequence is valid from the first one.
EVER: Final = datetime(2000, 1, 1, tzinfo=UTC)
_LEASE: Final = "shadow"
_VERDICT_VALUE: Final = {"better": -1.0, "worse": 1.0, "undecided": 0.0}


def target_comparison(
    target: str,
    n: int,
    champion_abs: float,
    shadow_abs: float,
    diff: float,
    diff_sq: float,
    *,
    min_pairs: int,
    alpha: float = ALPHA,
    n_star: float = DEFAULT_N_STAR,
) -> ShadowTarget:
    """One target's side-by-side MAE and the confidence sequence of the mean difference."""
    if n < max(min_pairs, 2):
        return ShadowTarget(
            target=target,
            champion_mae=None,
            shadow_mae=None,
            difference=None,
            lower=None,
            upper=None,
            p_value=None,
            verdict="not enough data",
        )
    mean = diff / n
    variance = max(0.0, (diff_sq - diff * diff / n) / (n - 1))
    se = math.sqrt(variance / n)
    if se == 0.0:
        # Identical errors on every pair (the same graph twice): no spread, no decision
        # unless the difference itself is not zero.
        half = 0.0
        p = 1.0 if mean == 0.0 else 0.0
    else:
        half = float(sequence_half_width(se, n, alpha=alpha, n_star=n_star))
        p = float(always_valid_p_value(mean, se, n, alpha=alpha, n_star=n_star))
    lower, upper = mean - half, mean + half
    verdict = "better" if upper < 0 else "worse" if lower > 0 else "undecided"
    return ShadowTarget(
        target=target,
        champion_mae=champion_abs / n,
        shadow_mae=shadow_abs / n,
        difference=mean,
        lower=lower,
        upper=upper,
        p_value=p,
        verdict=verdict,
    )


def compare(
    sums: ShadowSums, *, min_pairs: int, alpha: float = ALPHA, n_star: float = DEFAULT_N_STAR
) -> ShadowComparison:
    """The paired comparison of one (champion, shadow) pair of versions."""
    n = sums.n
    enough = n >= max(min_pairs, 2)
    count = target_comparison(
        "result_count",
        n,
        sums.champion_count_abs_err,
        sums.shadow_count_abs_err,
        sums.count_diff,
        sums.count_diff_sq,
        min_pairs=min_pairs,
        alpha=alpha,
        n_star=n_star,
    )
    duration = target_comparison(
        "duration_s",
        n,
        sums.champion_duration_abs_err,
        sums.shadow_duration_abs_err,
        sums.duration_diff,
        sums.duration_diff_sq,
        min_pairs=min_pairs,
        alpha=alpha,
        n_star=n_star,
    )
    if enough:
        count = _with_coverage(count, sums.champion_count_covered, sums.shadow_count_covered, n)
        duration = _with_coverage(
            duration, sums.champion_duration_covered, sums.shadow_duration_covered, n
        )
    return ShadowComparison(
        champion=sums.champion,
        shadow=sums.shadow,
        n=n,
        alpha=alpha,
        result_count=count,
        duration_s=duration,
        champion_brier=sums.champion_brier_sum / n if enough else None,
        shadow_brier=sums.shadow_brier_sum / n if enough else None,
        note=None if enough else not_enough(n),
    )


def _with_coverage(target: ShadowTarget, champion: int, shadow: int, n: int) -> ShadowTarget:
    return msgspec.structs.replace(
        target, champion_coverage=champion / n, shadow_coverage=shadow / n
    )


async def read_report(
    store: Store,
    *,
    version: str | None,
    share: float | None,
    min_pairs: int,
    now: datetime | None = None,
) -> ShadowReport:
    """Every paired comparison in the store (of `version` only, when given)."""
    until = (now or datetime.now(UTC)) + timedelta(minutes=1)
    try:
        sums = await store.shadow_sums(EVER, until, version)
    except StoreUnavailableError as exc:
        return ShadowReport(version=version, share=share, problem=f"store unavailable: {exc}")
    return ShadowReport(
        version=version,
        share=share,
        comparisons=[compare(s, min_pairs=min_pairs) for s in sums],
    )


class ShadowGauges:
    """The shadow comparison on /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def figure(name: str, doc: str, labels: Sequence[str]) -> Gauge:
            return Gauge(name, doc, list(labels), registry=registry, multiprocess_mode="mostrecent")

        self.pairs = figure(
            "scanopt_shadow_pairs",
            "Labelled requests both the champion and the shadow version scored.",
            ("champion", "shadow"),
        )
        self.mae = figure(
            "scanopt_shadow_mae",
            "MAE of a version on the labelled requests it shares with `paired_with`.",
            ("target", "version", "paired_with"),
        )
        self.difference = figure(
            "scanopt_shadow_difference",
            "Mean |error| of shadow minus champion per request, with its always-valid "
            "95% confidence sequence (bound: estimate, lower, upper).",
            ("target", "champion", "shadow", "bound"),
        )
        self.verdict = figure(
            "scanopt_shadow_verdict",
            "Shadow against champion at alpha 0.05: -1 better, 0 undecided, 1 worse.",
            ("target", "champion", "shadow"),
        )

    def show(self, report: ShadowReport) -> None:
        """Set every gauge from a report (pairs below the minimum set only their count)."""
        for c in report.comparisons:
            self.pairs.labels(c.champion, c.shadow).set(c.n)
            for t in (c.result_count, c.duration_s):
                if t.verdict not in _VERDICT_VALUE:
                    continue
                self.mae.labels(t.target, c.champion, c.shadow).set(_figure(t.champion_mae))
                self.mae.labels(t.target, c.shadow, c.champion).set(_figure(t.shadow_mae))
                for bound, value in (
                    ("estimate", t.difference),
                    ("lower", t.lower),
                    ("upper", t.upper),
                ):
                    self.difference.labels(t.target, c.champion, c.shadow, bound).set(
                        _figure(value)
                    )
                self.verdict.labels(t.target, c.champion, c.shadow).set(_VERDICT_VALUE[t.verdict])


def _figure(value: float | None) -> float:
    return math.nan if value is None else value


class ShadowMonitor:
    """Recomputes the shadow comparison periodically (one worker at a time) for /metrics."""

    def __init__(
        self,
        store: Store,
        gauges: ShadowGauges,
        *,
        version: str,
        share: float,
        interval_s: float,
        min_pairs: int,
    ) -> None:
        self.version = version
        self.share = share
        self.min_pairs = min_pairs
        self._store = store
        self._gauges = gauges
        self._interval_s = interval_s
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._task: asyncio.Task[None] | None = None

    async def report(self) -> ShadowReport:
        """The comparisons of the configured shadow version, read now."""
        return await read_report(
            self._store, version=self.version, share=self.share, min_pairs=self.min_pairs
        )

    async def refresh(self) -> ShadowReport | None:
        """Recompute and show the gauges if this worker holds the lease; the report or None."""
        now = datetime.now(UTC)
        if not await self._store.acquire_lease(
            _LEASE, self._holder, now, ttl_s=3 * self._interval_s
        ):
            return None
        report = await self.report()
        self._gauges.show(report)
        return report

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.refresh()
            except StoreUnavailableError as exc:
                _LOG.warning("shadow comparison not refreshed: %s", exc)
            except Exception:  # a refresh must never kill the worker
                _LOG.exception("shadow comparison refresh failed")
