"""Online accuracy from labelled outcomes: figures from mergeable sufficient statistics.

The store keeps, per minute, model version and arm, the sums behind every figure
(server.store.monitoring.AccuracySums); this module adds them up over a window and arms
and turns them into figures:

- MAE = sum |y - yhat| / n;  R2 = 1 - SSE / SST with SST = sum y^2 - (sum y)^2 / n;
- coverage = share of outcomes inside the predicted 90% interval;
- Brier = mean (p_empty - empty)^2;  ECE = sum over the 10 bins of n_b / n * |mean p - rate|.

A figure on fewer than `min_labelled` outcomes is None with the note
"not enough data (n = ...)": a number from a handful of scans would mislead a panel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Final

from server.monitoring.schemas import (
    AccuracyGroup,
    ProbabilityAccuracy,
    RegressionAccuracy,
)
from server.store.monitoring import AccuracySums, CalibrationSums

__all__ = [
    "ALL_ARMS",
    "WINDOWS",
    "group_figures",
    "merge_sums",
    "not_enough",
    "report_groups",
]

ALL_ARMS: Final = "all"
# The rolling windows; "live" (since the version went live) is None: everything kept.
WINDOWS: Final[Mapping[str, timedelta | None]] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "live": None,
}


def not_enough(n: int) -> str:
    """The note shown instead of a figure backed by too few outcomes."""
    return f"not enough data (n = {n})"


def merge_sums(parts: Iterable[AccuracySums], *, arm: str = ALL_ARMS) -> AccuracySums | None:
    """The sums of several groups of one version added up (None for no groups)."""
    items = list(parts)
    if not items:
        return None
    bins: dict[int, CalibrationSums] = {}
    for part in items:
        for b in part.calibration:
            old = bins.get(b.bin)
            bins[b.bin] = (
                b
                if old is None
                else CalibrationSums(
                    bin=b.bin,
                    n=old.n + b.n,
                    sum_p=old.sum_p + b.sum_p,
                    sum_empty=old.sum_empty + b.sum_empty,
                )
            )

    def total(name: str) -> float:
        return sum(float(getattr(p, name)) for p in items)

    return AccuracySums(
        version=items[0].version,
        arm=arm,
        n=sum(p.n for p in items),
        count_abs_err=total("count_abs_err"),
        count_sq_err=total("count_sq_err"),
        count_sum=total("count_sum"),
        count_sum_sq=total("count_sum_sq"),
        count_covered=sum(p.count_covered for p in items),
        duration_abs_err=total("duration_abs_err"),
        duration_sq_err=total("duration_sq_err"),
        duration_sum=total("duration_sum"),
        duration_sum_sq=total("duration_sum_sq"),
        duration_covered=sum(p.duration_covered for p in items),
        brier_sum=total("brier_sum"),
        calibration=tuple(bins[k] for k in sorted(bins)),
    )


def _r2(sq_err: float, total: float, total_sq: float, n: int) -> float | None:
    sst = total_sq - total * total / n
    return None if sst <= 0 else 1.0 - sq_err / sst


def _ece(bins: Sequence[CalibrationSums], n: int) -> float:
    return sum(b.n / n * abs(b.sum_p / b.n - b.sum_empty / b.n) for b in bins if b.n)


def group_figures(
    sums: AccuracySums, training: Mapping[str, Mapping[str, float]], min_labelled: int
) -> AccuracyGroup:
    """The figures of one group; `training` is the manifest's metrics (may be empty)."""
    n = sums.n
    enough = n >= min_labelled and n > 0
    note = None if enough else not_enough(n)

    def regression(
        target: str, abs_err: float, sq: float, s: float, s2: float, cov: int
    ) -> RegressionAccuracy:
        train = training.get(target, {})
        return RegressionAccuracy(
            target=target,
            n=n,
            mae=abs_err / n if enough else None,
            r2=_r2(sq, s, s2, n) if enough else None,
            coverage=cov / n if enough else None,
            training_mae=train.get("mae"),
            training_r2=train.get("r2"),
            training_coverage=train.get("coverage_90"),
            note=note,
        )

    return AccuracyGroup(
        version=sums.version,
        arm=sums.arm,
        labelled=n,
        result_count=regression(
            "result_count",
            sums.count_abs_err,
            sums.count_sq_err,
            sums.count_sum,
            sums.count_sum_sq,
            sums.count_covered,
        ),
        duration_s=regression(
            "duration_s",
            sums.duration_abs_err,
            sums.duration_sq_err,
            sums.duration_sum,
            sums.duration_sum_sq,
            sums.duration_covered,
        ),
        p_empty=ProbabilityAccuracy(
            n=n,
            brier=sums.brier_sum / n if enough else None,
            ece=_ece(sums.calibration, n) if enough else None,
            training_brier=training.get("empty", {}).get("brier"),
            note=note,
        ),
    )


def report_groups(
    rows: Sequence[AccuracySums],
    training_of: Mapping[str, Mapping[str, Mapping[str, float]]],
    min_labelled: int,
) -> list[AccuracyGroup]:
    """Per version: every arm together ("all") first, then each arm."""
    groups = []
    for version in sorted({r.version for r in rows}):
        mine = [r for r in rows if r.version == version]
        training = training_of.get(version, {})
        merged = merge_sums(mine)
        assert merged is not None  # `mine` holds at least the row that named the version
        groups.append(group_figures(merged, training, min_labelled))
        groups.extend(group_figures(r, training, min_labelled) for r in mine)
    return groups
