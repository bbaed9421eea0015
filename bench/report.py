"""The results of one benchmark run: the structs, the JSON file and the Markdown table.

A run that failed keeps its name and the reason, never a figure: `HttpRun.failure` is set
and its `closed`/`open` are None. `write_report` writes bench/results/<stem>.json and .md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import msgspec

from bench.machine import Machine
from bench.openloop import OpenLoopResult
from bench.wrk import WrkResult

__all__ = [
    "BenchReport",
    "Check",
    "HttpRun",
    "InProcessFigure",
    "render_markdown",
    "write_report",
]


class InProcessFigure(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One pytest-benchmark case: per-call times in microseconds."""

    name: str
    rounds: int
    median_us: float
    p99_us: float
    mean_us: float
    max_us: float
    # Cases timing a batch of rows (monitoring_drain): the median call over its rows.
    per_row_us: float | None = None


class HttpRun(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One server configuration under HTTP load: its figures, or why it failed."""

    name: str
    server: Literal["scanopt", "fastapi-sklearn", "ceiling"]
    path: str
    workers: int
    batcher: bool | None = None
    # SCANOPT_* settings this run changed from the defaults, besides workers and batcher.
    settings: dict[str, str] = {}
    startup_s: float | None = None
    closed: WrkResult | None = None
    open: OpenLoopResult | None = None
    peak_rss_mb: list[float] = []
    failure: str | None = None


class Check(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A target: `plan` targets fail the run when missed, `goal` targets are reported."""

    name: str
    kind: Literal["plan", "goal"]
    target: str
    value: float | None
    unit: str
    passed: bool | None  # None: not measured (its run failed or was not part of this mode)


class BenchReport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything one `python -m bench.run` measured."""

    started_at: str
    finished_at: str
    mode: Literal["full", "ci", "monitoring"]
    machine: Machine
    load_after: tuple[float, float, float]
    model_version: str
    inprocess: list[InProcessFigure]
    http: list[HttpRun]
    ratios: dict[str, float]
    # bench.verdict.capacity: per-core throughput and replicas for a target load.
    capacity: dict[str, float]
    checks: list[Check]
    batcher_recommendation: str
    failures: list[str]
    # No failed run and no missed plan target (bench.verdict.passed).
    passed: bool


def _f(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _sig(value: float) -> str:
    """Three significant figures without exponents: 0.0777, 41.8, 3,698."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _inprocess_table(figures: Sequence[InProcessFigure]) -> list[str]:
    rows = [
        "| in-process case | median µs | p99 µs | max µs | rounds |",
        "|---|---:|---:|---:|---:|",
    ]
    rows += [
        f"| {f.name} | {_f(f.median_us)} | {_f(f.p99_us)} | {_f(f.max_us)} | {f.rounds:,} |"
        for f in figures
    ]
    return rows


def _http_table(runs: Sequence[HttpRun]) -> list[str]:
    rows = [
        "| server | path | workers | batcher | wrk req/s | wrk p99 ms "
        "| open-loop req/s | p50 ms | p95 ms | p99 ms | max ms | peak RSS MiB/worker |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        batcher = "—" if r.batcher is None else ("on" if r.batcher else "off")
        head = f"| {r.name} | {r.path} | {r.workers} | {batcher} "
        if r.failure is not None:
            rows.append(head + "| FAILED | | | | | | | |")
            continue
        c, o = r.closed, r.open
        rss = max(r.peak_rss_mb) if r.peak_rss_mb else None
        rows.append(
            head
            + f"| {_f(c.requests_per_s, 0) if c else '—'} | {_f(c.p99_ms, 2) if c else '—'} "
            + (
                f"| {_f(o.achieved_rate, 0)} | {_f(o.latency.p50_ms, 2)} "
                f"| {_f(o.latency.p95_ms, 2)} | {_f(o.latency.p99_ms, 2)} "
                f"| {_f(o.latency.max_ms, 2)} "
                if o
                else "| — | — | — | — | — "
            )
            + f"| {_f(rss)} |"
        )
    return rows


def _client_table(runs: Sequence[HttpRun]) -> list[str]:
    rows = [
        "| open-loop client overhead | rate req/s | send lag p50 ms | send lag p99 ms "
        "| client CPU % of a core |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        if r.open is None:
            continue
        lag = r.open.send_lag
        rows.append(
            f"| {r.name} {r.path} | {_f(r.open.target_rate, 0)} | {_f(lag.p50_ms, 3)} "
            f"| {_f(lag.p99_ms, 3)} | {_f(r.open.client_cpu_share * 100)} |"
        )
    return rows


def _capacity_lines(cap: dict[str, float]) -> list[str]:
    if not cap:
        return ["Capacity: not measured (no scanopt /v1/predict run with figures).", ""]
    lines = [
        f"Capacity: one replica of this machine ({cap['workers']:.0f} workers) answered "
        f"{cap['replica_max_rps']:,.0f} req/s flat out, {cap['rps_per_core']:,.0f} req/s per "
        f"core; 10,000 req/s at 50% utilisation needs "
        f"{cap['replicas_for_target_at_utilisation']:.0f} such replicas."
    ]
    if "verified_rps_within_goal" in cap:
        lines[0] += (
            f" Verified open loop: {cap['verified_rps_within_goal']:,.0f} req/s per replica "
            f"within the 5 ms p95 goal, so {cap['replicas_for_target_verified']:.0f} replicas "
            "without extrapolating."
        )
    return [*lines, ""]


def _checks_table(checks: Sequence[Check]) -> list[str]:
    rows = ["| check | kind | target | measured | result |", "|---|---|---|---:|---|"]
    for c in checks:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[c.passed]
        value = "—" if c.value is None else f"{_sig(c.value)} {c.unit}"
        rows.append(f"| {c.name} | {c.kind} | {c.target} | {value} | {verdict} |")
    return rows


def render_markdown(report: BenchReport) -> str:
    """The report as Markdown: machine, in-process table, HTTP table, ratios, checks."""
    m = report.machine
    load = ", ".join(f"{x:.2f}" for x in m.load_before)
    load_after = ", ".join(f"{x:.2f}" for x in report.load_after)
    versions = ", ".join(f"{k} {v}" for k, v in m.versions.items())
    lines = [
        f"# scanopt benchmarks, {report.started_at} ({report.mode} run)",
        "",
        f"Machine: {m.nproc} cores, {m.cpu_model}, {m.mem_total_mb / 1024:.1f} GiB, "
        f"Python {m.python}, {m.platform}. Load average before: {load}; after: {load_after}.",
        f"Versions: {versions}. Model version: {report.model_version}.",
        "",
        "Result: " + ("PASSED" if report.passed else "FAILED"),
        "",
    ]
    if report.failures:
        lines += ["Failures:", "", *[f"- {f}" for f in report.failures], ""]
    lines += [*_inprocess_table(report.inprocess), ""]
    lines += [*_http_table(report.http), ""]
    lines += [
        "wrk: closed loop, flat out (its latencies hide queueing). Open loop: constant rate, "
        "latency from each request's intended send time.",
        "",
        *_client_table(report.http),
        "",
    ]
    if report.ratios:
        lines += ["| throughput ratio (wrk req/s) | value |", "|---|---:|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in report.ratios.items()]
        lines.append("")
    lines += [*_capacity_lines(report.capacity), *_checks_table(report.checks), ""]
    lines += [f"Micro-batcher: {report.batcher_recommendation}", ""]
    return "\n".join(lines)


def write_report(report: BenchReport, results_dir: Path, stem: str) -> tuple[Path, Path]:
    """Write <stem>.json and <stem>.md under `results_dir`; return both paths."""
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path = results_dir / f"{stem}.json"
    md_path = results_dir / f"{stem}.md"
    json_path.write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n")
    md_path.write_text(render_markdown(report))
    return json_path, md_path
