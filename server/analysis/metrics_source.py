"""The experiment report from the store: per-user sums, the analysis, and the daily looks.

    config (arms, weights, start) ──► AnalysisSpec
    store.experiment_metrics(name)  ──► UserMetrics per exposed user ──► analyse_experiment
    the same at the end of each UTC day since the first exposure ──► looks (trend plot)

Each daily look is the report as it would have read at midnight after that day; its
relative lifts become the points of the cumulative-lift plot, which is what the
always-valid intervals are for. The analysis is CPU work and runs in a thread, so an
event loop that awaits `build_report` keeps serving.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

import msgspec

from server.analysis.analysis import AnalysisSpec, analyse_experiment, look_points
from server.analysis.report import LookPoint, Report
from server.experiments.config import ExperimentConfig
from server.store.experiment_metrics import DEFAULT_PRE_WINDOW
from server.store.interface import Store

__all__ = ["MAX_LOOKS", "ReportOptions", "analysis_spec", "build_report", "look_boundaries"]

MAX_LOOKS: Final = 31
_DAY: Final = timedelta(days=1)


class ReportOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How to build a report: daily looks or not, and the analysis settings."""

    looks: bool = True
    max_looks: Annotated[int, msgspec.Meta(ge=1)] = MAX_LOOKS
    pre_window: timedelta = DEFAULT_PRE_WINDOW
    alpha: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] = 0.05
    cuped: bool = True


def analysis_spec(config: ExperimentConfig, options: ReportOptions) -> AnalysisSpec:
    """The analysis of `config`: its arms (first = control) with their configured weights."""
    return AnalysisSpec(
        experiment=config.name,
        arms=config.arm_names,
        weights=tuple(a.weight for a in config.arms),
        started_at=config.started_at,
        alpha=options.alpha,
        cuped=options.cuped,
    )


def look_boundaries(
    first_start: datetime | None, last_activity: datetime | None, max_looks: int = MAX_LOOKS
) -> list[datetime]:
    """Midnights (UTC) that end each day from the first start's day to the last full day.

    The final look (all data) is not among them. When there are more than `max_looks - 1`
    days, the latest ones are kept: the trend near now is what a reader decides on.
    """
    if first_start is None or last_activity is None or max_looks < 2:
        return []
    day = datetime.combine(first_start.astimezone(UTC).date(), datetime.min.time(), UTC)
    ends = []
    end = day + _DAY
    while end <= last_activity:
        ends.append(end)
        end += _DAY
    return ends[-(max_looks - 1) :]


async def build_report(
    store: Store,
    name: str,
    *,
    options: ReportOptions | None = None,
    now: datetime | None = None,
) -> Report:
    """The report of experiment `name` (ExperimentNotFoundError naming the known ones)."""
    options = options or ReportOptions()
    config = await store.get_experiment(name)
    spec = analysis_spec(config, options)
    final = await store.experiment_metrics(name, pre_window=options.pre_window)
    if final.first_start is not None and final.first_start < config.started_at:
        # Exposures follow the config's creation, except in replayed (simulated) history.
        spec = msgspec.structs.replace(spec, started_at=final.first_start)
    points: list[LookPoint] = []
    boundaries = (
        look_boundaries(final.first_start, final.last_activity, options.max_looks)
        if options.looks
        else []
    )
    first_day = (
        datetime.combine(final.first_start.astimezone(UTC).date(), datetime.min.time(), UTC)
        if final.first_start is not None
        else None
    )
    for until in boundaries:
        assert first_day is not None  # boundaries exist only when someone started
        look = (until - first_day) // _DAY
        seen = await store.experiment_metrics(name, until=until, pre_window=options.pre_window)
        daily = msgspec.structs.replace(spec, look=look)
        report = await asyncio.to_thread(analyse_experiment, seen.users, daily, now=until)
        points += look_points(report)
    if boundaries and first_day is not None and final.last_activity is not None:
        # The final look is the day of the latest activity (today, in a live experiment).
        spec = msgspec.structs.replace(spec, look=(final.last_activity - first_day) // _DAY + 1)
    return await asyncio.to_thread(analyse_experiment, final.users, spec, now=now, looks=points)
