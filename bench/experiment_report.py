"""`python -m bench.experiment_report` (`just report`): an experiment's report, written and shown.

    just report                          ml_scanning from the server at SCANOPT_URL, else
                                         computed from the store at SCANOPT_STORE_DSN
    just report ml_scanning --url http://127.0.0.1:8002
    just report --dsn sqlite:///var/scanopt.db --no-looks

Writes var/reports/<name>.json (the Report), .html (one page, plots inline) and .md, and
prints the sample-ratio check, the plan's checklist and the metrics. From a server, the
three files are its own renderings of GET /v1/experiments/{name}/report[.html|.md]; from a
store, the same code runs here. Exit status: 0 written, 1 the experiment or the server or
store could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import httpx
import msgspec
from rich.console import Console
from rich.table import Table

from server.analysis.metrics_source import ReportOptions, build_report
from server.analysis.report import Report, decode_report, encode_report
from server.analysis.report_html import render_html
from server.analysis.report_markdown import (
    CRITERIA_HEADER,
    METRIC_HEADER,
    criterion_row,
    metric_row,
    render_markdown,
    srm_sentence,
)
from server.errors import ScanoptError
from server.experiments.config import DEFAULT_EXPERIMENT
from server.store import open_store

__all__ = [
    "DEFAULT_OUT",
    "RenderedReport",
    "compute_report",
    "fetch_report",
    "fetch_report_json",
    "main",
    "print_report",
    "write_report",
]

DEFAULT_OUT: Final = Path("var/reports")
_DEFAULT_DSN: Final = "sqlite:///var/scanopt.db"


class RenderedReport(msgspec.Struct, frozen=True, kw_only=True):
    """A report with its renderings."""

    report: Report
    json: bytes
    html: str
    markdown: str


def _get(http: httpx.Client, url: str, looks: bool) -> httpx.Response:
    response = http.get(url, params={"looks": "true" if looks else "false"})
    if response.status_code != 200:
        raise ScanoptError(f"GET {url} answered {response.status_code}: {response.text[:300]}")
    return response


def _report_url(url: str, name: str) -> str:
    return f"{url.rstrip('/')}/v1/experiments/{name}/report"


def fetch_report_json(
    url: str, name: str = DEFAULT_EXPERIMENT, *, looks: bool = True, timeout_s: float = 120.0
) -> Report:
    """The report (JSON only) from the server at `url`."""
    with httpx.Client(timeout=timeout_s) as http:
        return decode_report(_get(http, _report_url(url, name), looks).content)


def fetch_report(
    url: str, name: str = DEFAULT_EXPERIMENT, *, looks: bool = True, timeout_s: float = 120.0
) -> RenderedReport:
    """The report as the server at `url` renders it (httpx errors and 4xx/5xx raise)."""
    base = _report_url(url, name)
    with httpx.Client(timeout=timeout_s) as http:
        parts = [_get(http, base + suffix, looks) for suffix in ("", ".html", ".md")]
    return RenderedReport(
        report=decode_report(parts[0].content),
        json=parts[0].content,
        html=parts[1].text,
        markdown=parts[2].text,
    )


async def compute_report(
    dsn: str, name: str = DEFAULT_EXPERIMENT, *, looks: bool = True
) -> RenderedReport:
    """The report computed here from the store at `dsn`."""
    store = await open_store(dsn, pool_size=1)
    try:
        report = await build_report(store, name, options=ReportOptions(looks=looks))
    finally:
        await store.close()
    return RenderedReport(
        report=report,
        json=encode_report(report),
        html=render_html(report),
        markdown=render_markdown(report),
    )


def write_report(rendered: RenderedReport, out_dir: Path) -> list[Path]:
    """Write <name>.json, .html and .md under `out_dir`; the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / rendered.report.experiment
    paths = [stem.with_suffix(".json"), stem.with_suffix(".html"), stem.with_suffix(".md")]
    paths[0].write_bytes(rendered.json)
    paths[1].write_text(rendered.html, encoding="utf-8")
    paths[2].write_text(rendered.markdown, encoding="utf-8")
    return paths


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i < 2 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def print_report(report: Report, console: Console) -> None:
    """The sample-ratio check first, then per treatment the checklist and the metrics."""
    style = "bold red" if report.srm.flagged else "green"
    console.print(f"[bold]Experiment {report.experiment}[/]")
    console.print(srm_sentence(report.srm), style=style)
    for warning in report.warnings:
        console.print(f"warning: {warning}", style="yellow")
    arm_rows = [
        [a.name, f"{a.users:,}", f"{a.share * 100:.2f}%", f"{a.sessions:,}", f"{a.scans:,}"]
        for a in report.arms
    ]
    console.print(_table("Arms", ["arm", "users", "share", "sessions", "scans"], arm_rows))
    for t in report.treatments:
        rows = [criterion_row(c) for c in t.criteria]
        console.print(
            _table(f"{t.arm} vs {report.control}: success criteria", CRITERIA_HEADER, rows)
        )
        rows = [metric_row(m) for m in t.metrics]
        console.print(_table(f"{t.arm} vs {report.control}: metrics", METRIC_HEADER, rows))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="just report", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?", default=DEFAULT_EXPERIMENT, help="experiment name")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--url", help="a running server (default: $SCANOPT_URL)")
    source.add_argument("--dsn", help="a store DSN (default: $SCANOPT_STORE_DSN)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--no-looks", action="store_true", help="skip the daily looks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch or compute, write, print; the exit status."""
    args = _parser().parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)  # a log file: the metric tables need the width
    url = args.url or (None if args.dsn else os.environ.get("SCANOPT_URL"))
    looks = not args.no_looks
    try:
        if url:
            rendered = fetch_report(url, args.name, looks=looks)
        else:
            dsn = args.dsn or os.environ.get("SCANOPT_STORE_DSN", _DEFAULT_DSN)
            rendered = asyncio.run(compute_report(dsn, args.name, looks=looks))
    except (ScanoptError, httpx.HTTPError) as exc:
        message = exc.message if isinstance(exc, ScanoptError) else repr(exc)
        console.print(f"report failed: {message}", style="bold red")
        return 1
    print_report(rendered.report, console)
    for path in write_report(rendered, args.out):
        console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
