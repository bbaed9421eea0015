"""Experiment config: the default, and the rules every change must follow."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from server.errors import InvalidInputError
from server.experiments.config import (
    ExperimentConfig,
    ExperimentUpdate,
    apply_update,
    default_experiment,
)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


def test_default_is_a_fair_full_rollout() -> None:
    """ml_scanning starts as control/treatment 50/50, full coverage, kill switch off."""
    config = default_experiment(NOW)
    assert config.name == "ml_scanning"
    assert config.arm_names == ("control", "treatment")
    assert [a.weight for a in config.arms] == [0.5, 0.5]
    assert (config.coverage, config.kill_switch, config.version) == (1.0, False, 1)


def test_update_changes_only_given_fields() -> None:
    """A kill-switch flip keeps weights and coverage, stamps the time and bumps the version."""
    config = apply_update(default_experiment(NOW), ExperimentUpdate(kill_switch=True), LATER)
    assert config.kill_switch is True
    assert config.coverage == 1.0
    assert [a.weight for a in config.arms] == [0.5, 0.5]
    assert (config.updated_at, config.started_at, config.version) == (LATER, NOW, 2)


def test_weights_are_kept_in_arm_order() -> None:
    """Weights given in any key order are applied to the arms in their fixed order."""
    update = ExperimentUpdate(weights={"treatment": 0.9, "control": 0.1})
    config = apply_update(default_experiment(NOW), update, LATER)
    assert [(a.name, a.weight) for a in config.arms] == [("control", 0.1), ("treatment", 0.9)]


def test_weights_that_round_to_one_are_accepted() -> None:
    """0.1 + 0.2 + ... style float error does not make a valid split invalid."""
    update = ExperimentUpdate(weights={"control": 0.7, "treatment": 0.1 + 0.2})
    assert apply_update(default_experiment(NOW), update, LATER).version == 2


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"control": 0.5, "treatment": 0.6}, r"weights must sum to 1, got 1\.1"),
        (
            {"control": 0.5, "treatmnet": 0.5},
            r"unknown arm\(s\) 'treatmnet'.*'control', 'treatment'",
        ),
        ({"control": 1.0}, r"miss arm\(s\) 'treatment'"),
    ],
)
def test_bad_weights_are_refused_with_the_reason(weights: dict[str, float], message: str) -> None:
    """Weights must name exactly the arms and sum to 1; the error says what is wrong."""
    with pytest.raises(InvalidInputError, match=message) as caught:
        apply_update(default_experiment(NOW), ExperimentUpdate(weights=weights), LATER)
    assert caught.value.field == "weights"


def test_an_empty_update_is_refused() -> None:
    """An update that changes nothing is a mistake worth reporting."""
    with pytest.raises(InvalidInputError, match="at least one of coverage, weights, kill_switch"):
        apply_update(default_experiment(NOW), ExperimentUpdate(), LATER)


@pytest.mark.parametrize(
    "body",
    [b'{"coverage": 1.5}', b'{"coverage": -0.1}', b'{"weights": {"control": 2}}', b'{"salt": "x"}'],
)
def test_out_of_range_or_unknown_fields_fail_decoding(body: bytes) -> None:
    """Coverage outside [0, 1], a weight above 1 and unchangeable fields are decode errors."""
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(body, type=ExperimentUpdate)


def test_config_round_trips_through_json() -> None:
    """The config as served decodes back to the same value."""
    config = default_experiment(NOW)
    assert msgspec.json.decode(msgspec.json.encode(config), type=ExperimentConfig) == config


def test_assign_respects_coverage_but_not_the_kill_switch() -> None:
    """`assign` is the pure hash: zero coverage puts nobody in, the kill switch is the gate's."""
    nobody = apply_update(
        default_experiment(NOW), ExperimentUpdate(coverage=0.0, force=True), LATER
    )
    assert {nobody.assign(f"u{i}") for i in range(100)} == {None}
    killed = apply_update(default_experiment(NOW), ExperimentUpdate(kill_switch=True), LATER)
    assert {killed.assign(f"u{i}") for i in range(100)} == {"control", "treatment"}
