"""The bars a default model must clear (issue 2), checked on recorded metrics.

`train.fit` prints the verdict after training and `export.validate` re-checks it from the
manifest, so a version that misses a bar is never called ready. Bars are on the held-out
test split of the default data (20,000 generated records).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec
from rich.table import Table

__all__ = ["TARGETS", "Target", "TargetCheck", "check_targets", "verdict_table"]


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


TARGETS: Final[tuple[Target, ...]] = (
    Target(label="MAE result_count", group="result_count", key="mae", high=10.0, strict=True),
    Target(label="MAE duration_s (s)", group="duration_s", key="mae", high=5.0, strict=True),
    Target(
        label="MAE result_count / oracle", group="result_count", key="mae_over_oracle", high=1.10
    ),
    Target(label="MAE duration_s / oracle", group="duration_s", key="mae_over_oracle", high=1.10),
    Target(
        label="90% coverage result_count",
        group="result_count",
        key="coverage_90",
        low=0.88,
        high=0.92,
    ),
    Target(
        label="90% coverage duration_s", group="duration_s", key="coverage_90", low=0.88, high=0.92
    ),
    Target(label="training time (s)", group="training", key="seconds", high=120.0, strict=True),
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
