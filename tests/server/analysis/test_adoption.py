"""The adoption checklist: each share against its target, and nothing met without data."""

from __future__ import annotations

from server.analysis.adoption import ADOPTION_CRITERIA, adoption_checklist
from server.store.business import ArmBusiness


def test_each_criterion_is_met_exactly_at_its_target() -> None:
    """50% tried, 70% positive and 30% regular meet; just below misses."""
    arm = ArmBusiness(
        arm="treatment",
        users=10,
        scans_completed=40,
        active_users=10,
        feedback=10,
        adoption=0.5,
        positive_share=0.69,
        regular_usage=0.3,
    )
    found = {c.key: c for c in adoption_checklist(arm)}
    assert [c.key for c in ADOPTION_CRITERIA] == ["tried_ml", "positive_feedback", "regular_usage"]
    assert (found["tried_ml"].met, found["positive_feedback"].met) == (True, False)
    assert found["regular_usage"].met
    assert (found["tried_ml"].n, found["positive_feedback"].n) == (10, 10)


def test_no_users_means_no_figure_and_not_met() -> None:
    """An arm without users: every criterion unmeasured and not met."""
    found = adoption_checklist(ArmBusiness(arm="treatment", users=0, scans_completed=0))
    assert all(c.measured is None and not c.met and c.n == 0 for c in found)
