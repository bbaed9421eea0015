"""The retrain report: what was compared, what the rule said, and where the errors are.

    write_report(folder, challenger, comparison, window, scored) -> folder/report.md

Writes report.md, report.html (self-contained apart from its two PNGs beside it),
differences.png (each paired difference with its 95% interval) and slices.png (the
worst-error slices). A slice is universe x strategy x timeframe on the holdout, with at
least MIN_SLICE_ROWS outcomes; slices are ranked by the challenger's result_count MAE,
the error that decides whether a scan is worth running: the "edge cases" to look at next.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI

import matplotlib.pyplot as plt  # after use(): the backend is chosen first
import polars as pl

from server.domain.artifact import DataWindow, RetrainComparison

__all__ = ["MIN_SLICE_ROWS", "WORST_SLICES", "worst_slices", "write_report"]

MIN_SLICE_ROWS: Final = 5
WORST_SLICES: Final = 10
_SLICE: Final = ("universe", "strategy", "timeframe")


def worst_slices(scored: pl.DataFrame, limit: int = WORST_SLICES) -> pl.DataFrame:
    """Slices of the holdout by the challenger's result_count MAE, worst first."""
    return (
        scored.group_by(_SLICE)
        .agg(
            pl.len().alias("rows"),
            (pl.col("champion_result_count") - pl.col("result_count"))
            .abs()
            .mean()
            .alias("champion_count_mae"),
            (pl.col("challenger_result_count") - pl.col("result_count"))
            .abs()
            .mean()
            .alias("challenger_count_mae"),
            (pl.col("challenger_duration_s") - pl.col("duration_s"))
            .abs()
            .mean()
            .alias("challenger_duration_mae"),
            pl.col("result_count").mean().alias("mean_result_count"),
        )
        .filter(pl.col("rows") >= MIN_SLICE_ROWS)
        .sort(["challenger_count_mae", *_SLICE], descending=[True, False, False, False])
        .head(limit)
    )


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _differences_png(comparison: RetrainComparison, path: Path) -> None:
    diffs = comparison.differences
    fig, axes = plt.subplots(1, len(diffs), figsize=(4 * len(diffs), 3.2), squeeze=False)
    for ax, d in zip(axes[0], diffs, strict=True):
        colour = {"better": "tab:green", "worse": "tab:red"}.get(d.verdict, "tab:grey")
        ax.errorbar(
            [0],
            [d.difference],
            yerr=[[d.difference - d.lower], [d.upper - d.difference]],
            fmt="o",
            color=colour,
            capsize=8,
        )
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks([])
        ax.set_title(f"{d.metric}: {d.verdict}", fontsize=10)
        ax.set_ylabel("champion - challenger (> 0: challenger better)", fontsize=8)
    _save(fig, path)


def _slices_png(slices: pl.DataFrame, path: Path) -> None:
    labels = [
        f"{u} / {s} / {t} (n={n})" for u, s, t, n in slices.select(*_SLICE, "rows").iter_rows()
    ]
    fig, ax = plt.subplots(figsize=(9, 0.45 * max(len(labels), 1) + 1.2))
    if labels:
        y = list(range(len(labels)))
        ax.barh([v - 0.2 for v in y], slices["champion_count_mae"].to_list(), 0.4, label="champion")
        ax.barh(
            [v + 0.2 for v in y], slices["challenger_count_mae"].to_list(), 0.4, label="challenger"
        )
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        ax.legend()
    else:
        ax.text(0.5, 0.5, f"no slice has {MIN_SLICE_ROWS} holdout outcomes yet", ha="center")
    ax.set_xlabel("result_count MAE on the holdout")
    ax.set_title("Worst-error slices (universe / strategy / timeframe)")
    _save(fig, path)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _slice_rows(slices: pl.DataFrame) -> list[list[str]]:
    return [
        [u, s, t, str(n), f"{a:.2f}", f"{b:.2f}", f"{c:.2f}", f"{m:.1f}"]
        for u, s, t, n, a, b, c, m in slices.iter_rows()
    ]


_SLICE_HEADER: Final = [
    "universe",
    "strategy",
    "timeframe",
    "rows",
    "champion count MAE",
    "challenger count MAE",
    "challenger duration MAE (s)",
    "mean result_count",
]
_DIFF_HEADER: Final = ["metric", "champion", "challenger", "difference [95%]", "users", "verdict"]


def _diff_rows(comparison: RetrainComparison) -> list[list[str]]:
    return [
        [
            d.metric,
            f"{d.champion:.4g}",
            f"{d.challenger:.4g}",
            f"{d.difference:+.4g} [{d.lower:+.4g}, {d.upper:+.4g}]",
            str(d.users),
            d.verdict,
        ]
        for d in comparison.differences
    ]


def write_report(
    folder: Path,
    challenger: str,
    comparison: RetrainComparison,
    window: DataWindow,
    scored: pl.DataFrame,
) -> Path:
    """Write the Markdown and HTML report and its PNGs into `folder`; the Markdown's path."""
    folder.mkdir(parents=True, exist_ok=True)
    slices = worst_slices(scored)
    _differences_png(comparison, folder / "differences.png")
    _slices_png(slices, folder / "slices.png")
    verdict = "promote" if comparison.promote else "keep the champion"
    checks = [[k, f"{v:.4g}"] for k, v in comparison.checks.items()]
    window_rows = [
        [k, str(v)] for k, v in zip(window.__struct_fields__, _values(window), strict=True)
    ]
    md = "\n\n".join(
        [
            f"# Retrain: {challenger} against {comparison.champion}",
            f"**Verdict: {verdict}.** Rule: {comparison.rule}.",
            "\n".join(f"- {r}" for r in comparison.reasons),
            "## Paired differences on the holdout (users neither model saw)",
            _table(_DIFF_HEADER, _diff_rows(comparison)),
            "![paired differences](differences.png)",
            "## Challenger checks",
            _table(["check", "value"], checks),
            "## Data window",
            _table(["field", "value"], window_rows),
            f"## Worst-error slices (at least {MIN_SLICE_ROWS} holdout outcomes)",
            _table(_SLICE_HEADER, _slice_rows(slices)) if slices.height else "No slice yet.",
            "![worst slices](slices.png)",
        ]
    )
    (folder / "report.md").write_text(md + "\n", encoding="utf-8")

    def html_table(header: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
        )
        return f"<table><tr>{head}</tr>{body}</table>"

    page = f"""<!doctype html><html lang="en"><meta charset="utf-8">
<title>Retrain {html.escape(challenger)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:right}}</style>
<h1>Retrain: {html.escape(challenger)} against {html.escape(comparison.champion)}</h1>
<p><b>Verdict: {verdict}.</b> Rule: {html.escape(comparison.rule)}.</p>
<ul>{"".join(f"<li>{html.escape(r)}</li>" for r in comparison.reasons)}</ul>
<h2>Paired differences on the holdout</h2>{html_table(_DIFF_HEADER, _diff_rows(comparison))}
<img src="differences.png" alt="paired differences">
<h2>Challenger checks</h2>{html_table(["check", "value"], checks)}
<h2>Data window</h2>{html_table(["field", "value"], window_rows)}
<h2>Worst-error slices</h2>{html_table(_SLICE_HEADER, _slice_rows(slices))}
<img src="slices.png" alt="worst slices">
</html>
"""
    (folder / "report.html").write_text(page, encoding="utf-8")
    return folder / "report.md"


def _values(struct: DataWindow) -> list[object]:
    """The field values of a struct, in field order."""
    return [getattr(struct, f) for f in struct.__struct_fields__]
