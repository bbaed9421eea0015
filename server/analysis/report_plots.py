"""The report's pictures, as inline SVG text (matplotlib, no pyplot, no display).

Figures are built on `matplotlib.figure.Figure` directly, so nothing global (pyplot's
figure registry, the interactive backend) is touched and rendering is safe in a server
worker. Text stays text (svg.fonttype none) and ids are salted with a constant, so the
same report renders to the same bytes.
"""

from __future__ import annotations

import io

import matplotlib as mpl
from matplotlib.figure import Figure

from server.analysis.report import Report, TreatmentResult

__all__ = ["forest_plot_svg", "lift_over_looks_svg", "srm_plot_svg"]

_GOOD, _BAD, _NEUTRAL, _SEQ = "#1a7f37", "#cf222e", "#57606a", "#9ecae1"


def _to_svg(fig: Figure) -> str:
    buffer = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "scanopt-report"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    # Inline SVG in HTML takes the <svg> element alone, without the XML prologue.
    return text[text.index("<svg") :]


def forest_plot_svg(treatment: TreatmentResult, control: str, *, criteria: bool = True) -> str:
    """Relative lift per metric: fixed 95% CI (thick), always-valid CI (light), targets (◆)."""
    rows = [
        (m, m.rel_diff, m.rel_ci)
        for m in treatment.metrics
        if m.rel_diff is not None and m.rel_ci is not None
    ]
    fig = Figure(figsize=(7.5, 0.45 * max(len(rows), 1) + 1.2))
    ax = fig.add_subplot()
    targets = {c.metric: c.target for c in treatment.criteria if c.relative} if criteria else {}
    for y, (m, rel, ci) in enumerate(reversed(rows)):
        if m.seq_rel_ci is not None:
            ax.plot(m.seq_rel_ci, [y, y], color=_SEQ, linewidth=7, solid_capstyle="butt")
        better = m.direction * rel > 0
        colour = _NEUTRAL if not m.significant or m.direction == 0 else _GOOD if better else _BAD
        ax.plot(ci, [y, y], color=colour, linewidth=2.5)
        ax.plot([rel], [y], "o", color=colour, markersize=6)
        if m.key in targets:
            ax.plot([targets[m.key]], [y], "D", color="black", markersize=5, fillstyle="none")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [m.label for m, _, _ in reversed(rows)])
    ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(xmax=1.0))
    ax.set_xlabel(f"relative lift of {treatment.arm} over {control}")
    ax.set_title("Lift with 95% CI (dark), always-valid CI (light), plan target (◆)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _to_svg(fig)


def srm_plot_svg(report: Report) -> str:
    """Users per arm against the counts the weights expect."""
    fig = Figure(figsize=(5.0, 2.8))
    ax = fig.add_subplot()
    names = [a.name for a in report.arms]
    xs = range(len(names))
    width = 0.38
    ax.bar([x - width / 2 for x in xs], report.srm.counts, width, label="observed", color="#0969da")
    ax.bar(
        [x + width / 2 for x in xs],
        report.srm.expected,
        width,
        label="expected",
        color="#d0d7de",
    )
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("users")
    verdict = "MISMATCH" if report.srm.flagged else "ok"
    ax.set_title(f"Sample ratio: p = {report.srm.p_value:.3g} ({verdict})", fontsize=10)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _to_svg(fig)


def lift_over_looks_svg(report: Report, arm: str) -> str | None:
    """Relative lift of the plan's metrics at each daily look, with the always-valid band."""
    treatment = next((t for t in report.treatments if t.arm == arm), None)
    metrics = [] if treatment is None else [c.metric for c in treatment.criteria]
    points = [p for p in report.looks if p.arm == arm and p.metric in metrics]
    if len({p.look for p in points}) < 2:
        return None
    fig = Figure(figsize=(7.5, 3.2))
    ax = fig.add_subplot()
    for key in metrics:
        ordered = sorted((p for p in points if p.metric == key), key=lambda p: p.look)
        series = [(p.look, p.rel_diff) for p in ordered if p.rel_diff is not None]
        if not series:
            continue
        (line,) = ax.plot(*zip(*series, strict=True), marker="o", markersize=3, label=key)
        band = [(p.look, p.seq_rel_ci) for p in ordered if p.seq_rel_ci is not None]
        if band:
            ax.fill_between(
                [look for look, _ in band],
                [ci[0] for _, ci in band],
                [ci[1] for _, ci in band],
                color=line.get_color(),
                alpha=0.15,
                linewidth=0,
            )
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(xmax=1.0))
    ax.set_xlabel("daily look")
    ax.set_ylabel("relative lift")
    ax.set_title("Cumulative lift by look (band: always-valid CI)", fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    return _to_svg(fig)
