"""The report as text people read: Markdown, and the cells the HTML page shares with it.

Same order as the report struct: the sample-ratio check first, then per treatment arm the
plan's checklist and the metrics grouped by the plan's three questions.
"""

from __future__ import annotations

import math

from server.analysis.catalogue import MetricGroup, Unit
from server.analysis.report import (
    CriterionResult,
    Interval,
    MetricResult,
    Report,
    SrmCheck,
)

__all__ = [
    "CRITERIA_HEADER",
    "METRIC_HEADER",
    "criterion_row",
    "format_value",
    "metric_row",
    "render_markdown",
    "srm_sentence",
]


def format_value(value: float | None, unit: Unit, *, signed: bool = False) -> str:
    """A value as a person reads it: shares as %, seconds with 's', '-' when unknown."""
    if value is None or not math.isfinite(value):
        return "-"
    sign = "+" if signed else ""
    if unit is Unit.SHARE:
        return f"{value * 100:{sign}.2f}%" if not signed else f"{value * 100:+.2f} pp"
    if unit is Unit.SECONDS:
        return f"{value:{sign}.1f} s"
    return f"{value:{sign}.3g}" if abs(value) < 1000 else f"{value:{sign},.0f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def _ci(ci: Interval | None, unit: Unit | None = None) -> str:
    if ci is None:
        return "-"
    if unit is None:  # a relative interval
        return f"[{ci[0] * 100:+.1f}%, {ci[1] * 100:+.1f}%]"
    return f"[{format_value(ci[0], unit, signed=True)}, {format_value(ci[1], unit, signed=True)}]"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:.2e}" if p < 0.001 else f"{p:.3f}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def srm_sentence(srm: SrmCheck) -> str:
    """One sentence on the sample-ratio check, alarming when it failed."""
    if srm.flagged:
        return (
            f"SAMPLE RATIO MISMATCH: p = {_p(srm.p_value)} < {srm.threshold:g}. Users per arm "
            f"{srm.counts} differ from the configured split (expected "
            f"{[round(e) for e in srm.expected]}). Assignment or logging is losing users "
            "unevenly; do not trust the comparisons below until it is explained."
        )
    return (
        f"Sample ratio OK: users per arm {srm.counts} match the weights "
        f"(chi-square p = {_p(srm.p_value)}, flagged below {srm.threshold:g})."
    )


def criterion_row(c: CriterionResult) -> list[str]:
    """The checklist row: target, measured, CI, significant, met."""
    if c.relative:
        target, measured, ci = _pct(c.target), _pct(c.measured), _ci(c.ci)
    else:
        target = format_value(c.target, Unit.SECONDS, signed=True)
        measured = format_value(c.measured, Unit.SECONDS, signed=True)
        ci = _ci(c.ci, Unit.SECONDS)
    return [
        "[x]" if c.met else "[ ]",
        c.label,
        target,
        measured,
        ci,
        _yes(c.significant),
        _yes(c.seq_significant),
        _yes(c.met),
    ]


CRITERIA_HEADER = ["", "criterion", "target", "measured", "95% CI", "p<a", "always-valid", "met"]
METRIC_HEADER = [
    "metric",
    "control",
    "treatment",
    "difference [95% CI]",
    "lift [95% CI]",
    "p",
    "always-valid lift",
    "always-valid p",
    "CUPED",
]


def metric_row(m: MetricResult) -> list[str]:
    """The metric table row; the note stands in for numbers the data cannot give."""
    cuped = "-" if m.cuped is None else f"-{m.cuped.variance_reduction * 100:.0f}% var"
    diff = format_value(m.abs_diff, m.unit, signed=True)
    if m.abs_ci is not None:
        diff += f" {_ci(m.abs_ci, m.unit)}"
    lift = _pct(m.rel_diff) + ("" if m.rel_ci is None else f" {_ci(m.rel_ci)}")
    star = " *" if m.significant else ""
    return [
        m.label + (f" ({m.note})" if m.note else ""),
        format_value(m.control_value, m.unit),
        format_value(m.treatment_value, m.unit),
        diff,
        lift,
        _p(m.p_value) + star,
        _ci(m.seq_rel_ci),
        _p(m.seq_p_value) + (" *" if m.seq_significant else ""),
        cuped,
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return lines


def render_markdown(report: Report) -> str:
    """The report as Markdown: SRM, arms, then per treatment the checklist and metrics."""
    out = [f"# Experiment report: {report.experiment}", ""]
    when = f"Generated {report.generated_at:%Y-%m-%d %H:%M} UTC"
    if report.started_at is not None:
        when += f", started {report.started_at:%Y-%m-%d}"
    if report.look is not None:
        when += f", daily look {report.look}"
    out += [when + f"; alpha = {report.alpha:g}.", ""]
    out += ["## Sample ratio", "", srm_sentence(report.srm), ""]
    out += _table(
        ["arm", "weight", "users", "share", "expected", "sessions", "scans"],
        [
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
        ],
    )
    out.append("")
    for warning in report.warnings:
        out += [f"> Warning: {warning}", ""]
    for t in report.treatments:
        out += [f"## {t.arm} vs {report.control}", "", "### Success criteria", ""]
        out += _table(CRITERIA_HEADER, [criterion_row(c) for c in t.criteria])
        out.append("")
        for group in MetricGroup:
            rows = [metric_row(m) for m in t.metrics if m.group is group]
            if rows:
                out += [f"### {group.value.capitalize()}", ""]
                out += [*_table(METRIC_HEADER, rows), ""]
    out += [
        "Differences are treatment minus control (CUPED-adjusted where the CUPED column "
        "shows a reduction); * marks p < alpha. Per-user means use "
        "Welch's t-test, user rates the two-proportion z-test, per-scan and per-session "
        "ratios the delta method. Always-valid intervals and p-values (asymptotic confidence "
        f"sequences, N* = {report.sequential_n_star:g}) may be read at every look; the "
        "fixed-horizon ones only once, at the planned end.",
        "",
    ]
    return "\n".join(out)
