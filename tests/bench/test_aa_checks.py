"""The A/A bands and the pass/fail logic, checked exactly."""

from __future__ import annotations

import msgspec
import pytest

from bench.aa_checks import (
    MAIN_METRICS,
    AaResult,
    AaSettings,
    Check,
    FamilyOutcome,
    MetricOutcome,
    SrmOutcome,
    evaluate,
    fpr_band,
)


def outcome(metric: str, **changes: float) -> MetricOutcome:
    good = MetricOutcome(
        metric=metric,
        test="welch_t",
        cuped=False,
        main=metric in MAIN_METRICS,
        false_positive_rate=0.05,
        ks_statistic=0.02,
        ks_p_value=0.5,
        sequential_crossing_rate=0.02,
        peeking_crossing_rate=0.25,
    )
    return msgspec.structs.replace(good, **changes)


def result(
    *metrics: MetricOutcome,
    skewed_p: float = 6.3e-5,
    false_alarms: float = 0.001,
    family_rate: float = 0.042,
) -> AaResult:
    return AaResult(
        settings=AaSettings(),
        metrics=list(metrics) or [outcome(m) for m in MAIN_METRICS],
        family=FamilyOutcome(
            metrics=9,
            correction="holm",
            raw_rate=0.33,
            adjusted_rate=family_rate,
            benjamini_hochberg_rate=0.045,
            sequential_raw_rate=0.13,
            sequential_adjusted_rate=0.012,
        ),
        srm=SrmOutcome(
            skewed_counts=[5200, 4800],
            skewed_p_value=skewed_p,
            skewed_flagged=skewed_p < 0.001,
            false_alarm_rate=false_alarms,
            power_at_skew=0.75,
        ),
        seconds=1.0,
    )


def failed(checks: list[Check]) -> list[str]:
    return [c.name for c in checks if not c.passed]


def test_the_band_for_1000_runs_is_the_issues_3_6_to_6_4_percent() -> None:
    """alpha +- 2 sqrt(0.05 x 0.95 / 1000) = 0.0362..0.0638, rounded outward: 0.036..0.064."""
    assert fpr_band(1000, 0.05, 2.0) == (0.036, 0.064)
    assert fpr_band(300, 0.05, 3.0) == (0.012, 0.088)


@pytest.mark.parametrize(
    ("fpr", "passes"), [(0.036, True), (0.064, True), (0.035, False), (0.065, False)]
)
def test_band_edges_are_inclusive(fpr: float, passes: bool) -> None:
    """36 and 64 false positives in 1,000 pass; 35 and 65 fail."""
    checks = evaluate(
        result(
            *(
                outcome(m, false_positive_rate=fpr if m == "satisfaction" else 0.05)
                for m in MAIN_METRICS
            )
        )
    )
    assert (failed(checks) == []) is passes
    if not passes:
        assert failed(checks) == ["satisfaction: false-positive rate"]


def test_sound_results_pass_every_check() -> None:
    """Three checks per main metric, the family-wise rate and two SRM checks, all passing."""
    checks = evaluate(result())
    assert len(checks) == 3 * len(MAIN_METRICS) + 3
    assert failed(checks) == []


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"ks_p_value": 0.009}, "empty_scan_rate: KS p of p-values vs uniform"),
        (
            {"sequential_crossing_rate": 0.051},
            "empty_scan_rate: always-valid p ever < alpha over 14 looks",
        ),
        ({"false_positive_rate": float("nan")}, "empty_scan_rate: false-positive rate"),
    ],
)
def test_each_gate_fails_on_its_own(changes: dict[str, float], name: str) -> None:
    """Non-uniform p-values, a sequential test that crosses too often, or NaN fail."""
    metrics = [
        outcome(m, **changes) if m == "empty_scan_rate" else outcome(m) for m in MAIN_METRICS
    ]
    assert failed(evaluate(result(*metrics))) == [name]


def test_srm_checks_fail_when_the_skew_is_missed_or_fair_splits_alarm() -> None:
    """p = 0.002 for 5,200/4,800 is a miss; 2% false alarms on fair draws is too many."""
    assert failed(evaluate(result(skewed_p=0.002))) == [
        "SRM: 5,200/4,800 flagged (p below the threshold)"
    ]
    assert failed(evaluate(result(false_alarms=0.02))) == ["SRM: false alarms on fair 50/50 draws"]


@pytest.mark.parametrize(("rate", "passes"), [(0.064, True), (0.065, False)])
def test_the_corrected_family_wise_rate_gates_at_the_bands_top(rate: float, passes: bool) -> None:
    """Holm promises <= alpha: 64 runs in 1,000 with any adjusted p < alpha pass, 65 fail."""
    names = failed(evaluate(result(family_rate=rate)))
    assert names == ([] if passes else ["family of 9: any holm-adjusted p < alpha"])


def test_information_metrics_do_not_gate() -> None:
    """A metric outside the main list may miss its band without failing the run."""
    extra = outcome("feature_adoption", false_positive_rate=0.2)
    assert not extra.main
    assert failed(evaluate(result(*[outcome(m) for m in MAIN_METRICS], extra))) == []


def test_a_main_metric_that_was_not_run_is_an_error() -> None:
    """Dropping a main metric cannot pass silently."""
    with pytest.raises(ValueError, match="return_rate"):
        evaluate(result(*[outcome(m) for m in MAIN_METRICS if m != "return_rate"]))
