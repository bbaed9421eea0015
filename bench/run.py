"""Run every benchmark in one go and write the results: `just bench`, `just bench-ci`.

    python -m bench.run          # full: bench/results/<date>.{json,md}
    python -m bench.run --ci     # the short CI guard: var/bench/results/<date>-ci.{json,md}
    python -m bench.run --monitoring  # monitoring on/off, interleaved: var/bench/results/

Steps, all on this machine in one run: the in-process pytest-benchmark suite
(bench/test_inference.py, in its own process), then for each server configuration of the
plan (bench.plan): start it, preflight every kind of request, warm up, closed-loop wrk,
open-loop at a constant rate (bench.openloop, in its own process), read each worker's peak
RSS, stop it. The exit status is 0 only when no run failed and every plan target was met.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench.baseline_model import ensure_baseline_model
from bench.corpus import recommend_bodies, scan_bodies, write_bodies
from bench.machine import describe_machine, load_average
from bench.openloop import LoadRunError, OpenLoopResult
from bench.plan import LoadPlan, RunConfig, ci_plan, full_plan, monitoring_plan, server_spec
from bench.report import BenchReport, HttpRun, InProcessFigure, render_markdown, write_report
from bench.servers import free_port, preflight, running_server
from bench.verdict import (
    batcher_recommendation,
    build_checks,
    capacity,
    passed,
    throughput_ratios,
)
from bench.wrk import run_wrk
from server.settings import Settings

__all__ = ["main", "run_http", "run_inprocess"]

# More distinct scans than the server's LRU cache holds: every request runs the model.
N_BODIES: Final = 20_000
PREFLIGHT_BODIES: Final = 20
SUITE: Final = Path(__file__).with_name("test_inference.py")


class _Paths(msgspec.Struct, frozen=True, kw_only=True):
    artifacts: Path
    workdir: Path
    predict_bodies: Path
    recommend_bodies: Path
    baseline_model: Path | None


def run_inprocess(
    quick: bool, artifacts: Path, workdir: Path
) -> tuple[list[InProcessFigure], str | None]:
    """The pytest-benchmark suite in a child process: its figures, and its failure if any."""
    out = workdir / "inprocess.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "SCANOPT_ARTIFACTS": str(artifacts)}
    if quick:
        env["SCANOPT_BENCH_QUICK"] = "1"
    cmd = [sys.executable, "-m", "pytest", str(SUITE), "-q", "-p", "no:cacheprovider"]
    cmd += [f"--benchmark-json={out}", "--benchmark-columns=min,median,mean,max,rounds"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    failure = None
    if proc.returncode != 0:
        said = [ln for ln in proc.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
        tail = "; ".join(said) or proc.stdout.strip()[-600:]
        failure = f"in-process suite failed (pytest exit {proc.returncode}): {tail}"
    if not out.exists():
        return [], failure or "in-process suite wrote no results"
    raw = msgspec.json.decode(out.read_bytes())
    figures = [
        InProcessFigure(
            name=b["name"].removeprefix("test_"),
            rounds=int(b["stats"]["rounds"]),
            median_us=b["stats"]["median"] * 1e6,
            p99_us=float(b["extra_info"]["p99_us"]),
            mean_us=b["stats"]["mean"] * 1e6,
            max_us=b["stats"]["max"] * 1e6,
            per_row_us=b["extra_info"].get("per_row_us"),
        )
        for b in raw["benchmarks"]
        if "p99_us" in b.get("extra_info", {})
    ]
    return figures, failure


def _open_loop(url: str, bodies: Path, rate: float, seconds: float, out: Path) -> OpenLoopResult:
    """bench.openloop in its own process, so the client never shares a GIL with anything."""
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "bench.openloop", url, "--bodies", str(bodies)]
    cmd += ["--rate", f"{rate:g}", "--duration", f"{seconds:g}", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if proc.returncode != 0 or not out.exists():
        raise LoadRunError(proc.stderr.strip()[-800:] or f"open-loop exited {proc.returncode}")
    return msgspec.json.decode(out.read_bytes(), type=OpenLoopResult)


def run_http(run: RunConfig, paths: _Paths, warmup_s: float) -> HttpRun:
    """One server configuration under load: its figures, or the reason it failed."""
    bodies = paths.recommend_bodies if run.path == "/v1/recommend" else paths.predict_bodies
    base = HttpRun(
        name=run.name,
        server=run.server,
        path=run.path,
        workers=run.workers,
        batcher=run.batcher,
        settings=run.env,
    )
    # A fresh store and metrics directory per configuration, so none inherits another's.
    state = paths.workdir / "server" / re.sub(r"[^A-Za-z0-9.+-]+", "-", run.name)
    shutil.rmtree(state, ignore_errors=True)
    try:
        state.mkdir(parents=True)
        spec = server_spec(
            run,
            free_port(),
            artifacts=paths.artifacts,
            workdir=state,
            baseline_model=paths.baseline_model,
        )
        with running_server(spec, paths.workdir / "logs") as server:
            url = spec.base_url + run.path
            sample = bodies.read_bytes().splitlines()[:PREFLIGHT_BODIES]
            preflight(url, sample)
            run_wrk(url, bodies, duration_s=warmup_s, workdir=paths.workdir)
            closed = run_wrk(url, bodies, duration_s=run.wrk_s, workdir=paths.workdir)
            opened = _open_loop(
                url, bodies, run.open_rate, run.open_s, paths.workdir / "openloop.json"
            )
            rss = server.peak_rss_mb()
            return msgspec.structs.replace(
                base, startup_s=server.startup_s, closed=closed, open=opened, peak_rss_mb=rss
            )
    except (LoadRunError, ValueError, OSError, subprocess.TimeoutExpired) as exc:
        reason = str(exc) if str(exc).startswith(run.name) else f"{run.name}: {exc}"
        return msgspec.structs.replace(base, failure=reason)


def _prepare(plan: LoadPlan, artifacts: Path, workdir: Path) -> tuple[_Paths, list[str]]:
    workdir.mkdir(parents=True, exist_ok=True)
    scans = scan_bodies(N_BODIES)
    failures: list[str] = []
    baseline: Path | None = None
    if any(r.server == "fastapi-sklearn" for r in plan.runs):
        try:
            baseline = ensure_baseline_model(artifacts, workdir / "baseline")
        except (ValueError, OSError) as exc:
            failures.append(f"baseline model: {exc}")
    paths = _Paths(
        artifacts=artifacts,
        workdir=workdir,
        predict_bodies=write_bodies(workdir / "predict.jsonl", scans),
        recommend_bodies=write_bodies(workdir / "recommend.jsonl", recommend_bodies(scans)),
        baseline_model=baseline,
    )
    return paths, failures


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; exit 0 only when nothing failed and every plan target was met."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--ci", action="store_true", help="the short CI guard")
    parser.add_argument("--monitoring", action="store_true", help="only the monitoring on/off pair")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--results", type=Path, help="results directory")
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    args = parser.parse_args(argv)

    defaults = Settings()
    if args.monitoring:
        plan = monitoring_plan()
    else:
        plan = ci_plan(defaults.workers, defaults.batcher) if args.ci else full_plan()
    scratch = args.ci or args.monitoring
    results = args.results or (Path("var/bench/results") if scratch else Path("bench/results"))
    # Wide enough for the tables when the output is a file or a CI log, not a terminal.
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
    machine = describe_machine()
    started = datetime.now(UTC)
    console.print(
        f"[bold]scanopt bench ({plan.mode})[/]: {machine.nproc} cores, {machine.cpu_model}, "
        f"load average {machine.load_before[0]:.2f} {machine.load_before[1]:.2f} "
        f"{machine.load_before[2]:.2f}"
    )
    current = args.artifacts / "current"
    if not current.is_file():
        console.print(f"{current} does not exist: expected a trained model (run `just model`)")
        return 2
    model_version = current.read_text().strip()

    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    runs: list[HttpRun] = []
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("preparing requests", total=len(plan.runs) + 2)
        paths, failures = _prepare(plan, args.artifacts, args.workdir)
        progress.advance(task)
        inprocess: list[InProcessFigure] = []
        if plan.mode != "monitoring":  # the pair is HTTP only
            progress.update(task, description="in-process suite (pytest-benchmark)")
            inprocess, failure = run_inprocess(plan.quick_inprocess, args.artifacts, args.workdir)
            failures += [failure] if failure else []
        for f in inprocess:
            progress.console.log(f"{f.name}: median {f.median_us:,.1f} µs, p99 {f.p99_us:,.1f} µs")
        progress.advance(task)
        for run in plan.runs:
            progress.update(task, description=run.name)
            result = run_http(run, paths, plan.warmup_s)
            runs.append(result)
            if result.failure:
                failures.append(result.failure)
                progress.console.log(f"[red]FAILED[/] {result.failure}")
            elif result.closed and result.open:
                progress.console.log(
                    f"{run.name}: wrk {result.closed.requests_per_s:,.0f} req/s; open loop "
                    f"{result.open.target_rate:,.0f} req/s p95 {result.open.latency.p95_ms:.2f} ms"
                )
            progress.advance(task)

    ratios = throughput_ratios(runs, defaults.batcher)
    checks = build_checks(inprocess, runs, ratios)
    report = BenchReport(
        started_at=started.isoformat(timespec="seconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        mode=plan.mode,
        machine=machine,
        load_after=load_average(),
        model_version=model_version,
        inprocess=inprocess,
        http=runs,
        ratios=ratios,
        capacity=capacity(runs, machine.nproc, defaults.batcher),
        checks=checks,
        batcher_recommendation=batcher_recommendation(runs),
        failures=failures,
        passed=passed(checks, failures),
    )
    stem = started.strftime("%Y-%m-%d") + (
        "-ci" if args.ci else "-monitoring" if args.monitoring else ""
    )
    json_path, md_path = write_report(report, results, stem)
    console.print(Markdown(render_markdown(report)))
    console.print(f"wrote {json_path} and {md_path}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
