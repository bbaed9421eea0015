"""The plan's user-adoption criteria: levels the treatment must reach, not lifts over control.

Measured on each treatment arm's events and feedback since the experiment started (by
event time; feedback by arrival), from the store's business figures
(server.store.business):

- tried_ml: at least 50% of treatment users try the ML features: users who applied at
  least one suggestion, over users with a completed scan;
- positive_feedback: at least 70% of feedback is positive: satisfaction ratings >= 4 over
  all ratings of the arm's predictions;
- regular_usage: at least 30% of treatment users use the ML features regularly, defined as
  applying suggestions on at least 2 distinct UTC days, over users with a completed scan.

A criterion is met when its share reaches the target; with nobody to count it is None
and not met.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from server.domain.scan import WireStruct
from server.store.business import ArmBusiness

__all__ = ["ADOPTION_CRITERIA", "AdoptionCriterion", "AdoptionTarget", "adoption_checklist"]


def _doc(text: str) -> msgspec.Meta:
    """A field's description (meaning and unit), for the OpenAPI document."""
    return msgspec.Meta(description=text)


class AdoptionTarget(msgspec.Struct, frozen=True, kw_only=True):
    """One adoption promise of the plan and how it is measured."""

    key: str
    label: str
    definition: str
    target: float


class AdoptionCriterion(WireStruct, frozen=True):
    """One adoption line of the checklist: the share measured, over how many, and met."""

    key: Annotated[str, _doc("the criterion's stable key")]
    label: Annotated[str, _doc("the criterion as the plan words it")]
    definition: Annotated[str, _doc("how the share is measured, in words")]
    target: Annotated[float, _doc("the share the plan promises, share 0-1")]
    n: Annotated[int, _doc("users in the denominator, count")]
    measured: Annotated[float | None, _doc("the share measured, share 0-1; null without users")] = (
        None
    )
    met: Annotated[bool, _doc("whether the measured share reaches the target")] = False


ADOPTION_CRITERIA: Final[tuple[AdoptionTarget, ...]] = (
    AdoptionTarget(
        key="tried_ml",
        label="Users try the ML features >= 50%",
        definition="users who applied at least one suggestion / users with a completed scan",
        target=0.50,
    ),
    AdoptionTarget(
        key="positive_feedback",
        label="Positive feedback >= 70%",
        definition="satisfaction ratings >= 4 / ratings of the arm's predictions",
        target=0.70,
    ),
    AdoptionTarget(
        key="regular_usage",
        label="Regular usage >= 30%",
        definition="users who applied suggestions on >= 2 distinct UTC days / users with a "
        "completed scan",
        target=0.30,
    ),
)


def adoption_checklist(arm: ArmBusiness) -> list[AdoptionCriterion]:
    """The adoption criteria measured on one treatment arm's figures."""
    measured = {
        "tried_ml": (arm.adoption, arm.active_users),
        "positive_feedback": (arm.positive_share, arm.feedback),
        "regular_usage": (arm.regular_usage, arm.active_users),
    }
    out = []
    for c in ADOPTION_CRITERIA:
        value, n = measured[c.key]
        out.append(
            AdoptionCriterion(
                key=c.key,
                label=c.label,
                definition=c.definition,
                target=c.target,
                n=n,
                measured=value,
                met=value is not None and value >= c.target,
            )
        )
    return out
