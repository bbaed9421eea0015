"""The bars: one module, the same accuracy bars on the test split and the fresh population."""

from __future__ import annotations

from train import targets
from train.targets import FRESH_TARGETS, TARGETS, accuracy_targets, check_targets


def test_fresh_bars_mirror_the_test_split_bars() -> None:
    """Each test-split bar has a fresh twin with the same key and bounds, group prefixed."""
    plain = accuracy_targets()
    assert len(plain) == len(FRESH_TARGETS)
    for bar, fresh in zip(plain, FRESH_TARGETS, strict=True):
        assert fresh.group == f"fresh_{bar.group}"
        assert (fresh.key, fresh.low, fresh.high, fresh.strict) == (
            bar.key,
            bar.low,
            bar.high,
            bar.strict,
        )
    assert set(plain) | set(FRESH_TARGETS) <= set(TARGETS)


def test_bars_use_the_module_thresholds() -> None:
    """The thresholds of the issue, each read from its one constant."""
    by_key = {(t.group, t.key): t for t in accuracy_targets()}
    assert by_key[("result_count", "mae_over_oracle")].high == targets.COUNT_OVER_ORACLE_MAX == 1.10
    assert by_key[("duration_s", "mae_over_oracle")].high == targets.DURATION_OVER_ORACLE_MAX
    assert targets.DURATION_OVER_ORACLE_MAX == 1.06
    assert by_key[("empty", "roc_auc")].low == targets.ROC_AUC_MIN == 0.94
    assert by_key[("empty", "ece")].high == targets.ECE_MAX == 0.02
    for group in ("result_count", "duration_s"):
        band = by_key[(group, "coverage_90")]
        assert (band.low, band.high) == targets.COVERAGE_BAND == (0.88, 0.92)
        for t in (1, 2, 3):
            assert by_key[(group, f"coverage_90_tercile_{t}")].low == 0.88


def test_a_missing_tercile_fails_and_a_low_one_fails() -> None:
    """Coverage inside the band overall but 0.85 in the top tercile misses its bar."""
    metrics = {
        "result_count": {
            "coverage_90": 0.90,
            "coverage_90_tercile_1": 0.95,
            "coverage_90_tercile_2": 0.90,
            "coverage_90_tercile_3": 0.85,
        }
    }
    counts = tuple(t for t in accuracy_targets() if t.group == "result_count")
    checks = {c.target.key: c.passed for c in check_targets(metrics, counts)}
    assert checks["coverage_90"]
    assert checks["coverage_90_tercile_1"]
    assert not checks["coverage_90_tercile_3"]
    assert not checks["mae"]  # not recorded
