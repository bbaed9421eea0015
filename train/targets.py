"""The bars a default model must clear, every threshold in this one module.

A scanner's next user is one the model never saw, so every accuracy bar is checked on two
populations of unseen users: the test split of `just train` (split by user) and a fresh
population, history generated with other seeds (`train.fresh`), whose metrics carry the
`FRESH_PREFIX` on their group ("fresh_result_count"). `train.fit` prints the verdict after
training, `export.validate` re-checks the recorded figures from the manifest and scores
the ONNX graph on a fresh population of its own against `FRESH_TARGETS`, so a version
that misses a bar is never called ready.

The bars: result-count MAE < 10 and duration MAE < 5 s; MAE / oracle MAE (the noise
floor) <= 1.10 for counts and <= 1.06 for durations; 90% intervals covering 0.88-0.92
overall and at least 0.88 in every tercile of their own predicted value; p_empty ROC AUC
>= 0.94 with expected calibration error <= 0.02. Training (`just train`) under 120 s of
CPU time (`training.cpu_seconds`; the wall time, `training.seconds`, is recorded too but
on a machine shared with other work it measures the neighbours as well).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec
from rich.table import Table

__all__ = [
    "COUNT_MAE_MAX",
    "COUNT_OVER_ORACLE_MAX",
    "COVERAGE_BAND",
    "DURATION_MAE_MAX_S",
    "DURATION_OVER_ORACLE_MAX",
    "ECE_MAX",
    "FRESH_PREFIX",
    "FRESH_TARGETS",
    "ROC_AUC_MIN",
    "TARGETS",
    "TERCILE_COVERAGE_MIN",
    "TRAINING_SECONDS_MAX",
    "Target",
    "TargetCheck",
    "accuracy_targets",
    "check_targets",
    "verdict_table",
]


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """One bar: metrics[group][key] must lie in [low, high] (either may be open)."""

    label: str
    group: str
    key: str
    low: float | None = None
    high: float | None = None
    strict: bool = False  # high is exclusive ("MAE < 10")

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:g} to {self.high:g}"
        if self.high is not None:
            return f"{'<' if self.strict else '<='} {self.high:g}"
        return f">= {self.low:g}"


class TargetCheck(msgspec.Struct, frozen=True, kw_only=True):
    """A bar and what was measured against it (None: the metric was not recorded)."""

    target: Target
    measured: float | None
    passed: bool


FRESH_PREFIX: Final = "fresh_"
COVERAGE_BAND: Final = (0.88, 0.92)
TERCILE_COVERAGE_MIN: Final = 0.88
COUNT_MAE_MAX: Final = 10.0
DURATION_MAE_MAX_S: Final = 5.0
COUNT_OVER_ORACLE_MAX: Final = 1.10
DURATION_OVER_ORACLE_MAX: Final = 1.06
ROC_AUC_MIN: Final = 0.94
ECE_MAX: Final = 0.02
TRAINING_SECONDS_MAX: Final = 120.0


def accuracy_targets(prefix: str = "") -> tuple[Target, ...]:
    """The accuracy bars on the metrics of one population (groups named `prefix` + target)."""
    where = f" ({prefix.rstrip('_')})" if prefix else ""
    count, duration, empty = (f"{prefix}{g}" for g in ("result_count", "duration_s", "empty"))
    low, high = COVERAGE_BAND
    bars = [
        Target(
            label=f"MAE result_count{where}",
            group=count,
            key="mae",
            high=COUNT_MAE_MAX,
            strict=True,
        ),
        Target(
            label=f"MAE duration_s (s){where}",
            group=duration,
            key="mae",
            high=DURATION_MAE_MAX_S,
            strict=True,
        ),
        Target(
            label=f"MAE result_count / oracle{where}",
            group=count,
            key="mae_over_oracle",
            high=COUNT_OVER_ORACLE_MAX,
        ),
        Target(
            label=f"MAE duration_s / oracle{where}",
            group=duration,
            key="mae_over_oracle",
            high=DURATION_OVER_ORACLE_MAX,
        ),
    ]
    for name, group in (("result_count", count), ("duration_s", duration)):
        bars.append(
            Target(
                label=f"90% coverage {name}{where}",
                group=group,
                key="coverage_90",
                low=low,
                high=high,
            )
        )
        bars += [
            Target(
                label=f"90% coverage {name}, tercile {t} of predicted{where}",
                group=group,
                key=f"coverage_90_tercile_{t}",
                low=TERCILE_COVERAGE_MIN,
            )
            for t in (1, 2, 3)
        ]
    bars += [
        Target(label=f"p_empty ROC AUC{where}", group=empty, key="roc_auc", low=ROC_AUC_MIN),
        Target(label=f"p_empty ECE{where}", group=empty, key="ece", high=ECE_MAX),
    ]
    return tuple(bars)


FRESH_TARGETS: Final[tuple[Target, ...]] = accuracy_targets(FRESH_PREFIX)
TARGETS: Final[tuple[Target, ...]] = (
    *accuracy_targets(),
    *FRESH_TARGETS,
    Target(
        label="training CPU time (s)",
        group="training",
        key="cpu_seconds",
        high=TRAINING_SECONDS_MAX,
        strict=True,
    ),
)


def _passes(target: Target, value: float) -> bool:
    if target.low is not None and value < target.low:
        return False
    if target.high is None:
        return True
    return value < target.high if target.strict else value <= target.high


def check_targets(
    metrics: Mapping[str, Mapping[str, float]], targets: tuple[Target, ...] = TARGETS
) -> list[TargetCheck]:
    """Each target against the metrics; a missing metric fails its target."""
    checks = []
    for target in targets:
        value = metrics.get(target.group, {}).get(target.key)
        checks.append(
            TargetCheck(
                target=target,
                measured=value,
                passed=value is not None and _passes(target, value),
            )
        )
    return checks


def verdict_table(checks: list[TargetCheck], title: str = "Targets") -> Table:
    """A rich table: target / measured / bar / pass."""
    table = Table(title=title)
    table.add_column("target")
    table.add_column("measured", justify="right")
    table.add_column("bar")
    table.add_column("pass")
    for check in checks:
        measured = "missing" if check.measured is None else f"{check.measured:.4g}"
        verdict = "[green]pass[/]" if check.passed else "[red]FAIL[/]"
        table.add_row(check.target.label, measured, check.target.describe(), verdict)
    return table
