"""GET /v1/experiments/{name}/report[.html|.md]: the experiment report from the store.

One report, three renderings of the same struct: JSON for machines (`server.experiments.
report.Report`), one self-contained HTML page with inline SVG plots, and Markdown. The
query parameter `looks` (default true) adds the daily looks behind the cumulative-lift
plot; `looks=false` is one aggregation instead of one per day.

Building and rendering are CPU work and run in threads, off the event loop. matplotlib is
not thread-safe even without pyplot (its font cache and text layout are shared), so the
HTML rendering holds a lock; one lock per app, as each worker is one app.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from litestar import MediaType, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromQuery

from server.analysis.report import Report
from server.routes.params import ExperimentName, one_value_each
from server.store.interface import Store

__all__ = ["MARKDOWN", "routes"]

MARKDOWN = "text/markdown; charset=utf-8"


def routes(store: Store) -> list[HTTPRouteHandler]:
    """The report handlers, reading this worker's store."""
    plot_lock = threading.Lock()

    # The analysis (scipy) and the plots (matplotlib) are imported on the first report, not
    # at start-up: they would add ~90 MiB to every worker that only ever serves predictions.
    async def report_of(name: str, looks: bool) -> Report:
        from server.analysis.metrics_source import ReportOptions, build_report

        options = ReportOptions(looks=looks)
        return await build_report(store, name, options=options, now=datetime.now(UTC))

    def html_of(report: Report) -> str:
        from server.analysis.report_html import render_html

        with plot_lock:
            return render_html(report)

    @get("/v1/experiments/{name:str}/report", tags=["experiments"], guards=[one_value_each])
    async def report_json(name: ExperimentName, looks: FromQuery[bool] = True) -> Report:
        """The experiment report: sample-ratio check, per-metric lifts with 95% CIs, p-values,
        always-valid intervals, CUPED and the plan's checklist (404 naming known experiments)."""
        return await report_of(name, looks)

    @get(
        "/v1/experiments/{name:str}/report.html",
        tags=["experiments"],
        media_type=MediaType.HTML,
        guards=[one_value_each],
    )
    async def report_html(name: ExperimentName, looks: FromQuery[bool] = True) -> Response[str]:
        """The report as one HTML page with its plots inline (SVG), for people."""
        page = await asyncio.to_thread(html_of, await report_of(name, looks))
        return Response(page, media_type=MediaType.HTML)

    @get(
        "/v1/experiments/{name:str}/report.md",
        tags=["experiments"],
        media_type=MARKDOWN,
        guards=[one_value_each],
    )
    async def report_markdown(name: ExperimentName, looks: FromQuery[bool] = True) -> Response[str]:
        """The report as Markdown (tables, no plots)."""
        from server.analysis.report_markdown import render_markdown

        text = await asyncio.to_thread(render_markdown, await report_of(name, looks))
        return Response(text, media_type=MARKDOWN)

    return [report_json, report_html, report_markdown]
