"""Experiment configuration: what is stored, what an admin may change, and the rules.

An experiment has a name, a salt for the assignment hash, ordered arms with weights that
sum to 1, a coverage (the rollout share in [0, 1]) and a kill switch. The default
experiment `ml_scanning` (control/treatment 50/50, full coverage, kill switch off) exists
from the first start; the store creates it idempotently.

Changes arrive as an `ExperimentUpdate` (PUT /v1/admin/experiments/{name} or the CLI).
Fields left out keep their value, so flipping the kill switch is `{"kill_switch": true}`.
Arms and the salt cannot be changed: that would reshuffle users between arms mid-test.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Final

import msgspec

from server.domain.scan import Name, WireStruct
from server.errors import InvalidInputError
from server.experiments.assignment import assign_arm

__all__ = [
    "CONTROL",
    "DEFAULT_EXPERIMENT",
    "TREATMENT",
    "Arm",
    "ExperimentConfig",
    "ExperimentUpdate",
    "apply_update",
    "default_experiment",
]

DEFAULT_EXPERIMENT: Final = "ml_scanning"
CONTROL: Final = "control"
TREATMENT: Final = "treatment"
# Weights are typed by people and round-trip through JSON: 0.1 + 0.2 must count as 0.3.
_WEIGHT_SUM_TOLERANCE: Final = 1e-6

Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


def _doc(text: str) -> msgspec.Meta:
    """A field's description (meaning and unit), for the OpenAPI document."""
    return msgspec.Meta(description=text)


class Arm(WireStruct, frozen=True):
    """One arm and its share of the covered users."""

    name: Annotated[Name, _doc("the arm's name")]
    weight: Annotated[
        Share, _doc("the arm's share of the covered users, share; the arms' weights sum to 1")
    ]


class ExperimentConfig(WireStruct, frozen=True):
    """One experiment as stored; `version` grows by one with every change."""

    name: Annotated[Name, _doc("the experiment's name")]
    salt: Annotated[str, _doc("the salt of the assignment hash; fixed for the experiment's life")]
    arms: Annotated[tuple[Arm, ...], _doc("the arms, in order")]
    coverage: Annotated[Share, _doc("the rollout: share of users in the experiment, share")]
    kill_switch: Annotated[bool, _doc("when true, every user gets the standard flow (arm null)")]
    started_at: Annotated[datetime, _doc("when the experiment started, UTC ISO-8601")]
    updated_at: Annotated[datetime, _doc("when it last changed, UTC ISO-8601")]
    version: Annotated[int, _doc("the configuration's revision, grows by one with every change")]

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(arm.name for arm in self.arms)

    def assign(self, user_id: str) -> str | None:
        """The user's arm by hash and coverage (ignores the kill switch), None outside."""
        return assign_arm(
            self.salt, user_id, self.arm_names, [a.weight for a in self.arms], self.coverage
        )


class ExperimentUpdate(WireStruct, frozen=True):
    """A change to an experiment; at least one field must be given.

    `force` is needed to lower the coverage of a running experiment (see apply_update).
    """

    coverage: Annotated[
        Share | None, _doc("the new rollout share of users, share; left out: unchanged")
    ] = None
    weights: Annotated[
        dict[str, Share] | None,
        _doc("the new share of each arm by arm name, share; they sum to 1; left out: unchanged"),
    ] = None
    kill_switch: Annotated[bool | None, _doc("the new kill switch; left out: unchanged")] = None
    force: Annotated[bool, _doc("allow lowering the coverage of a running experiment")] = False


def default_experiment(now: datetime) -> ExperimentConfig:
    """`ml_scanning`: control/treatment 50/50, full coverage, kill switch off."""
    return ExperimentConfig(
        name=DEFAULT_EXPERIMENT,
        salt=DEFAULT_EXPERIMENT,
        arms=(Arm(name=CONTROL, weight=0.5), Arm(name=TREATMENT, weight=0.5)),
        coverage=1.0,
        kill_switch=False,
        started_at=now,
        updated_at=now,
        version=1,
    )


def _checked_weights(config: ExperimentConfig, weights: dict[str, float]) -> tuple[Arm, ...]:
    names = config.arm_names
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise InvalidInputError(
            f"unknown arm(s) {', '.join(map(repr, unknown))} in weights of experiment "
            f"{config.name!r}; its arms are {', '.join(map(repr, names))}",
            field="weights",
        )
    missing = [name for name in names if name not in weights]
    if missing:
        raise InvalidInputError(
            f"weights of experiment {config.name!r} miss arm(s) {', '.join(map(repr, missing))}; "
            f"give a weight for every arm: {', '.join(map(repr, names))}",
            field="weights",
        )
    total = math.fsum(weights.values())
    if abs(total - 1.0) > _WEIGHT_SUM_TOLERANCE:
        raise InvalidInputError(
            f"weights must sum to 1, got {total:g} ({weights})", field="weights"
        )
    return tuple(Arm(name=name, weight=weights[name]) for name in names)


def apply_update(
    config: ExperimentConfig, update: ExperimentUpdate, now: datetime
) -> ExperimentConfig:
    """The config after `update`, or InvalidInputError naming what is wrong."""
    if update.coverage is None and update.weights is None and update.kill_switch is None:
        raise InvalidInputError(
            "nothing to change: give at least one of coverage, weights, kill_switch"
        )
    if update.coverage is not None and update.coverage < config.coverage and not update.force:
        # Bucket ranges shrink from their ends (server.experiments.assignment), so lowering
        # coverage takes users already in an arm out of the experiment, and the analysis
        # keeps them under the arm they were exposed to.
        raise InvalidInputError(
            f"coverage: lowering it from {config.coverage:g} to {update.coverage:g} while "
            f"{config.name!r} runs takes users already in an arm out of the experiment: "
            "they stop getting their arm but stay in the analysis under it, so their later "
            "scans dilute the measured effect and the arms stop being comparable; to lower "
            'it anyway send "force": true (CLI: --force), or use the kill switch to stop ML',
            field="coverage",
        )
    arms = config.arms if update.weights is None else _checked_weights(config, update.weights)
    return msgspec.structs.replace(
        config,
        arms=arms,
        coverage=config.coverage if update.coverage is None else update.coverage,
        kill_switch=config.kill_switch if update.kill_switch is None else update.kill_switch,
        updated_at=now,
        version=config.version + 1,
    )
