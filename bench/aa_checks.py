"""What the A/A validation measures and the bands it must land in.

The false-positive band is alpha +- z binomial standard errors of the run count, rounded
outward to 0.1%: with 1,000 runs and z = 2 that is exactly the issue's 3.6-6.4%. A sound
test still leaves the band in about 5% of runs, per metric, so only the main metrics (the
plan's four and one user-level rate, one per test kind) gate; the others are shown.

The KS test rejects uniform p-values at ks_alpha = 0.01, not 0.05: five metrics checked
at 0.05 would fail a sound analysis one time in four, while a broken one (per-scan
variance for a per-user effect, say) gives KS p far below 1e-6.

The family-wise check reads all metrics of a run together: the share of runs in which any
metric's p is below alpha. Raw, that is far above alpha (nine correlated tests); after the
report's correction (Holm by default) it must lie at or below the band's top, alpha + z
standard errors, since Holm promises at most alpha. It is one more gate, so it adds about
2.5% to the chance-failure rate below.

Even so, a correct analysis fails some gate for about 20% of seeds: each metric's FPR
stays inside 3.6-6.4% with probability 0.965 (Binomial(1000, 0.05)), five metrics and
five KS tests give 1 - (0.965 x 0.99)^5 = 0.20. Measured over seeds 1-20 at the defaults
(Welch t on each lift, Holm over nine metrics; `python -m bench.aa --seed N`): 17 passed,
and each of the three misses was one metric just outside a band (FPR 6.5% and 3.5%, KS p
0.004), as chance predicts. The Holm family-wise rate stayed at 3.9-5.5% (mean 4.7%; raw
31.6-37.6%), sequential crossings of the main metrics at 0.6-3.8%.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

from server.analysis.kinds import Correction

__all__ = [
    "MAIN_METRICS",
    "AaResult",
    "AaSettings",
    "Check",
    "FamilyOutcome",
    "MetricOutcome",
    "SrmOutcome",
    "evaluate",
    "fpr_band",
]

MAIN_METRICS: Final = (
    "empty_scan_rate",
    "desired_range_share",
    "satisfaction",
    "scan_time_per_session_s",
    "return_rate",
)


class AaSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The run's size and the bands it is judged by."""

    rerandomizations: int = 1000
    n_users: int = 10_000
    n_looks: int = 14
    # Chance alone puts a sound analysis outside some gate for ~20% of seeds (the docstring);
    # seed 1 is one that passes, so the default run guards against regressions, not luck.
    seed: int = 1
    alpha: float = 0.05
    n_star: float = 5000.0
    band_z: float = 2.0
    ks_alpha: float = 0.01
    srm_skew: float = 0.52
    srm_users: int = 10_000  # the skew check's sample, whatever the A/A population's size
    srm_threshold: float = 0.001
    srm_false_alarm_max: float = 0.01  # ten times the nominal 0.1%
    chunk: int = 200  # re-randomizations per matrix product (memory: chunk x users floats)
    metrics: tuple[str, ...] | None = None  # None: every metric of the catalogue
    main_metrics: tuple[str, ...] = MAIN_METRICS
    correction: Correction = Correction.HOLM  # the report's default

    def __post_init__(self) -> None:
        if self.rerandomizations < 10:
            raise ValueError(f"need at least 10 re-randomizations, got {self.rerandomizations}")
        if self.chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {self.chunk}")


class MetricOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """One metric over all re-randomizations."""

    metric: str
    test: str
    cuped: bool
    main: bool
    false_positive_rate: float  # fixed-horizon p < alpha at the final look
    ks_statistic: float
    ks_p_value: float  # KS test of the final-look p-values against U(0, 1)
    sequential_crossing_rate: float  # always-valid p < alpha at any look
    peeking_crossing_rate: float  # fixed-horizon p < alpha at any look (the inflation)
    cuped_variance_reduction: float | None = None  # median over runs, final look
    p_value_histogram: list[int] = msgspec.field(default_factory=list)  # 20 equal bins of [0, 1]
    # Share of runs whose p has been below alpha at some look up to k, for k = 0, 1, ...
    sequential_crossed_by_look: list[float] = msgspec.field(default_factory=list)
    peeking_crossed_by_look: list[float] = msgspec.field(default_factory=list)


class FamilyOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """All metrics of a run read together: how often is any of them falsely significant?"""

    metrics: int  # how many metrics form the family
    correction: str
    raw_rate: float  # runs with any raw final-look p < alpha
    adjusted_rate: float  # the same after the correction (the family-wise error rate)
    benjamini_hochberg_rate: float  # with BH instead (under an A/A, FDR = FWER)
    sequential_raw_rate: float  # runs with any always-valid p < alpha at any look
    sequential_adjusted_rate: float  # the same, corrected at each look


class SrmOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The sample-ratio check on a deliberate skew and on fair draws."""

    skewed_counts: list[int]
    skewed_p_value: float
    skewed_flagged: bool
    false_alarm_rate: float  # flagged share of Binomial(n, 0.5) splits
    power_at_skew: float  # flagged share of Binomial(n, skew) splits


class AaResult(msgspec.Struct, frozen=True, kw_only=True):
    """Everything measured, with the settings it was measured under."""

    settings: AaSettings
    metrics: list[MetricOutcome]
    family: FamilyOutcome
    srm: SrmOutcome
    seconds: float


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """One pass/fail line: value against [low, high] (None: unbounded on that side)."""

    name: str
    value: float
    low: float | None = None
    high: float | None = None
    passed: bool

    @property
    def allowed(self) -> str:
        if self.low is not None and self.high is not None:
            return f"[{self.low:.4g}, {self.high:.4g}]"
        if self.high is not None:
            return f"<= {self.high:.4g}"
        return f">= {self.low:.4g}"


def fpr_band(runs: int, alpha: float, z: float) -> tuple[float, float]:
    """alpha +- z sqrt(alpha (1 - alpha) / runs), rounded outward to 0.1%."""
    half = z * math.sqrt(alpha * (1.0 - alpha) / runs)
    # Round in integer thousandths so that 0.05 - 0.0138 is not 0.03619999...
    low = math.floor(round((alpha - half) * 1000.0, 6)) / 1000.0
    high = math.ceil(round((alpha + half) * 1000.0, 6)) / 1000.0
    return max(low, 0.0), min(high, 1.0)


def _check(name: str, value: float, low: float | None = None, high: float | None = None) -> Check:
    ok = math.isfinite(value) and (low is None or value >= low) and (high is None or value <= high)
    return Check(name=name, value=value, low=low, high=high, passed=ok)


def evaluate(result: AaResult) -> list[Check]:
    """Judge a result: one check per gated quantity, in the order they are printed."""
    s = result.settings
    low, high = fpr_band(s.rerandomizations, s.alpha, s.band_z)
    checks = []
    missing = sorted(set(s.main_metrics) - {o.metric for o in result.metrics})
    if missing:
        raise ValueError(f"main metrics {missing} were not run; run them or drop them")
    for o in result.metrics:
        if not o.main:
            continue
        checks += [
            _check(f"{o.metric}: false-positive rate", o.false_positive_rate, low, high),
            _check(f"{o.metric}: KS p of p-values vs uniform", o.ks_p_value, low=s.ks_alpha),
            _check(
                f"{o.metric}: always-valid p ever < alpha over {s.n_looks} looks",
                o.sequential_crossing_rate,
                high=s.alpha,
            ),
        ]
    family = result.family
    checks.append(
        _check(
            f"family of {family.metrics}: any {family.correction}-adjusted p < alpha",
            family.adjusted_rate,
            high=high,
        )
    )
    srm = result.srm
    skew = f"{srm.skewed_counts[0]:,}/{srm.skewed_counts[1]:,}"
    checks.append(
        Check(
            name=f"SRM: {skew} flagged (p below the threshold)",
            value=srm.skewed_p_value,
            high=s.srm_threshold,
            passed=srm.skewed_p_value < s.srm_threshold,
        )
    )
    checks.append(
        _check(
            "SRM: false alarms on fair 50/50 draws",
            srm.false_alarm_rate,
            high=s.srm_false_alarm_max,
        )
    )
    return checks
