"""The report as one self-contained HTML page: tables and inline SVG plots, no external files.

Same content and order as the Markdown (report_markdown.py): the sample-ratio check first, then per
treatment the plan's checklist, a forest plot of every metric's lift, and the metric
tables. Every string from the report is escaped.
"""

from __future__ import annotations

from html import escape

from server.analysis.catalogue import MetricGroup
from server.analysis.report import Report
from server.analysis.report_markdown import (
    CRITERIA_HEADER,
    METRIC_HEADER,
    criterion_row,
    metric_row,
    srm_sentence,
)
from server.analysis.report_plots import forest_plot_svg, lift_over_looks_svg, srm_plot_svg

__all__ = ["render_html"]

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1f2328; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #eaeef2; text-align: right; }
th:first-child, td:first-child, td:nth-child(2) { text-align: left; }
th { background: #f6f8fa; }
.banner { padding: 0.75rem 1rem; border-radius: 6px; margin: 1rem 0; }
.ok { background: #dafbe1; } .bad { background: #ffebe9; font-weight: 600; }
.warn { background: #fff8c5; }
.met { color: #1a7f37; font-weight: 600; } .missed { color: #57606a; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.plots svg { max-width: 100%; height: auto; }
.note { color: #57606a; font-size: 0.9em; }
"""


def _table(header: list[str], rows: list[list[str]], row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(report: Report) -> str:
    """The whole report page."""
    title = f"Experiment report: {report.experiment}"
    when = f"Generated {report.generated_at:%Y-%m-%d %H:%M} UTC"
    if report.started_at is not None:
        when += f", started {report.started_at:%Y-%m-%d}"
    if report.look is not None:
        when += f", daily look {report.look}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{escape(when)}; alpha = {report.alpha:g}.</p>",
        "<h2>Sample ratio</h2>",
        f'<div class="banner {"bad" if report.srm.flagged else "ok"}">'
        f"{escape(srm_sentence(report.srm))}</div>",
    ]
    arm_rows = [
        [
            a.name,
            f"{a.weight:g}",
            f"{a.users:,}",
            f"{a.share * 100:.2f}%",
            f"{a.expected_share * 100:.2f}%",
            f"{a.sessions:,}",
            f"{a.scans:,}",
        ]
        for a in report.arms
    ]
    parts.append('<div class="plots"><div>')
    parts.append(
        _table(["arm", "weight", "users", "share", "expected", "sessions", "scans"], arm_rows)
    )
    parts.append(f"</div>{srm_plot_svg(report)}</div>")
    parts += [f'<div class="banner warn">{escape(w)}</div>' for w in report.warnings]
    for t in report.treatments:
        parts.append(f"<h2>{escape(t.arm)} vs {escape(report.control)}</h2>")
        parts.append("<h3>Success criteria</h3>")
        parts.append(
            _table(
                CRITERIA_HEADER,
                [criterion_row(c) for c in t.criteria],
                ["met" if c.met else "missed" for c in t.criteria],
            )
        )
        parts.append(f'<div class="plots">{forest_plot_svg(t, report.control)}')
        trend = lift_over_looks_svg(report, t.arm)
        parts.append(f"{trend or ''}</div>")
        for group in MetricGroup:
            rows = [metric_row(m) for m in t.metrics if m.group is group]
            if rows:
                parts.append(f"<h3>{escape(group.value.capitalize())}</h3>")
                parts.append(_table(METRIC_HEADER, rows))
    parts.append(
        '<p class="note">Differences are treatment minus control (CUPED-adjusted where the '
        "CUPED column shows a reduction); * marks p &lt; alpha. Per-user means use Welch's "
        "t-test, user rates the two-proportion z-test, per-scan and per-session ratios the "
        "delta method. Always-valid intervals and p-values (asymptotic confidence sequences, "
        f"N* = {report.sequential_n_star:g}) may be read at every look; the fixed-horizon "
        "ones only once, at the planned end.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)
