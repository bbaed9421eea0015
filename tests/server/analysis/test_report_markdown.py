"""The Markdown rendering and the cells it shares with the HTML page."""

from __future__ import annotations

import msgspec
import pytest

from server.analysis.analysis import analyse_experiment
from server.analysis.catalogue import Unit
from server.analysis.report_markdown import format_value, render_markdown
from server.store.records import UserMetrics
from tests.server.analysis.sample_report import NOW, SPEC
from tests.server.analysis.sample_report import sample_report as report


def test_markdown_shows_srm_then_checklist_then_metric_groups() -> None:
    """Order for people: sample ratio, criteria with targets, then efficiency/quality/engagement."""
    text = render_markdown(report())
    order = [
        "## Sample ratio",
        "Sample ratio OK",
        "### Success criteria",
        "Empty scans -30%",
        "### Efficiency",
        "### Quality",
        "### Engagement",
    ]
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)
    assert "daily look 13" in text
    assert "started 2026-11-12" in text


def test_markdown_rows_carry_values_intervals_and_both_p_values() -> None:
    """The empty-scan row shows both arms, the difference with CI, lift, p and always-valid p."""
    r = report()
    empty = next(m for m in r.treatments[0].metrics if m.key == "empty_scan_rate")
    row = next(line for line in render_markdown(r).splitlines() if line.startswith("| Empty-scan"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == format_value(empty.control_value, Unit.SHARE)
    assert cells[3].startswith(format_value(empty.abs_diff, Unit.SHARE, signed=True) + " [")
    assert empty.rel_diff is not None
    assert cells[4].startswith(f"{empty.rel_diff * 100:+.1f}% [")
    assert len(cells) == 9
    assert cells[8].endswith("% var")


def test_a_flagged_srm_is_an_alarm_in_the_markdown() -> None:
    """SRM failure reads as a warning telling people not to trust the rest."""
    users = [
        UserMetrics(
            user_id=f"u{i}", arm="control" if i < 60 else "treatment", n_sessions=1, n_scans=1
        )
        for i in range(100)
    ]
    spec = msgspec.structs.replace(SPEC, srm_threshold=0.1)
    text = render_markdown(analyse_experiment(users, spec, now=NOW))
    assert "SAMPLE RATIO MISMATCH" in text
    assert "do not trust" in text


@pytest.mark.parametrize(
    ("value", "unit", "signed", "text"),
    [
        (0.1234, Unit.SHARE, False, "12.34%"),
        (-0.0123, Unit.SHARE, True, "-1.23 pp"),
        (301.26, Unit.SECONDS, False, "301.3 s"),
        (-4.0, Unit.SECONDS, True, "-4.0 s"),
        (3.4567, Unit.RATING, False, "3.46"),
        (12345.0, Unit.NUMBER, False, "12,345"),
        (None, Unit.SHARE, False, "-"),
        (float("nan"), Unit.NUMBER, False, "-"),
    ],
)
def test_values_are_printed_in_their_unit(
    value: float | None, unit: Unit, signed: bool, text: str
) -> None:
    """Shares as % (differences in points), seconds with s, unknown as '-'."""
    assert format_value(value, unit, signed=signed) == text
