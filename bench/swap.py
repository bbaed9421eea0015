"""Promote and roll back while an open-loop load runs: every error counted, and for each
swap the time until every worker follows and the worst latency.

    python -m bench.swap [--rate 600] [--duration 9] [--workers 2] [--poll 2]
                         [--artifacts artifacts] [--work var/bench/swap] [--out FILE]

The run builds its own artifacts directory under --work: the version --artifacts/current
names (copied; the champion) and a challenger fitted quickly on generated records, whose
parent is the champion (with no default model, two quick versions). It starts
`python -m server.serve` with --workers Granian workers polling artifacts/current every
--poll seconds (SCANOPT_RELOAD_POLL_S), sends --rate /v1/predict requests per second for
--duration seconds (bench.openloop: latency from each request's intended send time), and
meanwhile promotes the challenger at 1/4 of the run and rolls back at 5/8, through
export.lifecycle, the code `just promote` and `just rollback` run.

For each move:

    switch_s  how long the move took before the pointer changed (validation included)
    follow_s  from the pointer change to the send time of the last request an old-version
              worker answered: when every worker serves the new version (resolution: the
              gap between two requests, ~2 ms at 500 req/s)
    worst_ms  the worst latency of the requests due from the start of the move to the
              end of its follow time (validating, loading and warming share the CPU)

Errors are every non-2xx answer, transport error and request never answered (goal 0).
Only treatment users get a model_version in their answer (the A/B gate hides ML from
control), so the follow time is read from those; every request counts for errors.
Exit 1 when a request failed or a worker never followed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import msgspec

from bench.corpus import scan_bodies
from bench.latency import LatencySummary, summarize
from bench.openloop import LoadRunError, OpenLoopConfig, OpenLoopRecord, record_open_loop
from bench.servers import ServerSpec, free_port, running_server
from export.artifacts import point_current, read_current
from export.lifecycle import promote, rollback
from export.pipeline import build_version
from train.generate import generate_records

__all__ = [
    "MoveFigures",
    "ScheduledMove",
    "SwapResult",
    "analyse",
    "main",
    "prepare_artifacts",
    "run_swap",
]

_CHALLENGER_RECORDS: Final = 1500
_CHALLENGER_SEED: Final = 7
_CORPUS: Final = 2000


class MoveFigures(msgspec.Struct, frozen=True, kw_only=True):
    """One move of the alias under load (seconds from the run's start; latency in ms)."""

    action: str
    from_version: str
    to_version: str
    started_s: float
    switch_s: float
    follow_s: float | None  # None: some worker never served `to_version` during the run
    worst_ms: float
    answers_old_after_switch: int


class SwapResult(msgspec.Struct, frozen=True, kw_only=True):
    """A whole run: load, errors, each move, and latency outside and during the moves."""

    workers: int
    poll_s: float
    target_rate: float
    achieved_rate: float
    duration_s: float
    requests: int
    errors: int
    error_samples: list[str]
    moves: list[MoveFigures]
    latency_steady: LatencySummary
    latency_during_moves: LatencySummary

    @property
    def passed(self) -> bool:
        return self.errors == 0 and all(m.follow_s is not None for m in self.moves)


class _Answer(msgspec.Struct):
    model_version: str | None = None


_ANSWER: Final = msgspec.json.Decoder(_Answer)


class ScheduledMove(msgspec.Struct, kw_only=True):
    """A move due `at_s` after the run starts; the mover fills in when and what it did."""

    action: str
    at_s: float
    started: float = 0.0
    switched: float = 0.0
    from_version: str = ""
    to_version: str = ""
    error: str | None = None


def prepare_artifacts(work: Path, base: Path) -> tuple[str, str]:
    """A private artifacts folder: (champion, challenger); current names the champion."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    champion = read_current(base) if (base / "current").is_file() else None
    if champion is not None:
        shutil.copytree(base / "models" / champion, work / "models" / champion)
        point_current(work, champion)
    else:
        champion = build_version(generate_records(_CHALLENGER_RECORDS, 0), work, quick=True).name
    records = generate_records(_CHALLENGER_RECORDS, _CHALLENGER_SEED)
    challenger = build_version(records, work, seed=_CHALLENGER_SEED, quick=True).name
    point_current(work, champion)  # export pointed current at the challenger
    return champion, challenger


def _mover(artifacts: Path, moves: list[ScheduledMove], t0: float, stop: threading.Event) -> None:
    """Runs each move at its time, in this thread (validation must not block the load)."""
    for move in moves:
        if stop.wait(max(0.0, t0 + move.at_s - time.perf_counter())):
            return
        move.started = time.perf_counter()
        try:
            done = (
                promote(artifacts, move.to_version, targets=False)
                if move.action == "promote"
                else rollback(artifacts, targets=False)
            )
        except Exception as exc:  # reported in the result; the load keeps running
            move.error = f"{type(exc).__name__}: {exc}"
            continue
        move.switched = time.perf_counter()
        move.from_version, move.to_version = done.previous or "", done.version


def analyse(
    rec: OpenLoopRecord,
    moves: Sequence[ScheduledMove],
    workers: int,
    poll_s: float,
    duration_s: float,
) -> SwapResult:
    """Errors, each move's follow time and worst latency, steady and swap latencies."""
    n = len(rec.status)
    versions = [
        _ANSWER.decode(b).model_version if s == 200 else None
        for s, b in zip(rec.status, rec.bodies, strict=True)
    ]
    errors = sum(1 for s in rec.status if s != 200)
    figures: list[MoveFigures] = []
    in_move = [False] * n
    for k, m in enumerate(moves):
        if m.error is not None or not m.switched:
            raise LoadRunError(f"{m.action} failed during the run: {m.error}")
        # A move is followed until the next one starts (a rollback brings the old back).
        until = moves[k + 1].started if k + 1 < len(moves) else float("inf")
        old_after = [
            rec.sent[i]
            for i in range(n)
            if versions[i] == m.from_version and m.switched < rec.sent[i] < until
        ]
        new_after = any(
            versions[i] == m.to_version and m.switched < rec.sent[i] < until for i in range(n)
        )
        follow = (max(old_after) - m.switched) if old_after else 0.0
        window_end = m.switched + follow
        window = [
            i
            for i in range(n)
            if m.started <= rec.intended(i) <= window_end and rec.status[i] == 200
        ]
        for i in window:
            in_move[i] = True
        figures.append(
            MoveFigures(
                action=m.action,
                from_version=m.from_version,
                to_version=m.to_version,
                started_s=m.started - rec.start,
                switch_s=m.switched - m.started,
                follow_s=follow if new_after else None,
                worst_ms=max((rec.latency(i) for i in window), default=0.0) * 1000.0,
                answers_old_after_switch=len(old_after),
            )
        )
    ok = [i for i in range(n) if rec.status[i] == 200]
    steady = [rec.latency(i) for i in ok if not in_move[i]]
    during = [rec.latency(i) for i in ok if in_move[i]]
    last_done = max(rec.done) if ok else rec.start + 1.0
    return SwapResult(
        workers=workers,
        poll_s=poll_s,
        target_rate=rec.rate,
        achieved_rate=n / (last_done - rec.start),
        duration_s=duration_s,
        requests=n,
        errors=errors,
        error_samples=rec.errors[:5],
        moves=figures,
        latency_steady=summarize(steady or [0.0]),
        latency_during_moves=summarize(during or [0.0]),
    )


def run_swap(
    work: Path,
    base_artifacts: Path,
    *,
    rate: float,
    duration_s: float,
    workers: int,
    poll_s: float,
    connections: int = 32,
) -> SwapResult:
    """Build the versions, start the server, load it and move the alias twice."""
    artifacts = (work / "artifacts").resolve()
    champion, challenger = prepare_artifacts(artifacts, base_artifacts)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANOPT_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    spec = ServerSpec(
        name="swap",
        argv=[sys.executable, "-m", "server.serve"],
        port=port,
        env={
            "SCANOPT_PORT": str(port),
            "SCANOPT_WORKERS": str(workers),
            "SCANOPT_ARTIFACTS": str(artifacts),
            "SCANOPT_RELOAD_POLL_S": str(poll_s),
            "SCANOPT_STORE_DSN": f"sqlite:///{(work / 'scanopt.db').resolve()}",
            "SCANOPT_METRICS_DIR": str((work / "metrics").resolve()),
            "SCANOPT_LOG_LEVEL": "WARNING",
        },
    )
    bodies = scan_bodies(_CORPUS)
    cfg = OpenLoopConfig(
        url=f"{spec.base_url}/v1/predict",
        rate=rate,
        duration_s=duration_s,
        connections=connections,
    )
    moves = [
        ScheduledMove(action="promote", at_s=duration_s / 4, to_version=challenger),
        ScheduledMove(action="rollback", at_s=duration_s * 5 / 8, to_version=champion),
    ]
    with running_server(spec, work / "logs", base_env=env):
        stop = threading.Event()
        # The load starts 10 ms after this instant (bench.openloop); moves count from here.
        mover = threading.Thread(
            target=_mover, args=(artifacts, moves, time.perf_counter(), stop), daemon=True
        )
        gc.disable()  # the client's collector pauses would be charged to the server
        try:
            mover.start()
            rec = asyncio.run(record_open_loop(cfg, bodies, keep_bodies=True))
        finally:
            gc.enable()
            stop.set()
            mover.join(timeout=60)
    return analyse(rec, moves, workers, poll_s, duration_s)


def _print(result: SwapResult) -> None:
    print(
        f"{result.requests} requests at {result.achieved_rate:.0f} req/s (target "
        f"{result.target_rate:.0f}) on {result.workers} workers, poll {result.poll_s:g} s: "
        f"{result.errors} errors"
    )
    for m in result.moves:
        follow = "NEVER" if m.follow_s is None else f"{m.follow_s:.3f} s"
        print(
            f"  {m.action:8s} {m.from_version} -> {m.to_version}: validated+switched in "
            f"{m.switch_s:.3f} s, every worker followed in {follow}, worst latency "
            f"{m.worst_ms:.1f} ms"
        )
    s, d = result.latency_steady, result.latency_during_moves
    print(f"  latency steady   p50 {s.p50_ms:.2f} ms  p99 {s.p99_ms:.2f} ms  max {s.max_ms:.1f} ms")
    print(f"  latency in swaps p50 {d.p50_ms:.2f} ms  p99 {d.p99_ms:.2f} ms  max {d.max_ms:.1f} ms")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run, print the figures (JSON to --out); exit 1 on any error or a worker left behind."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.swap", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rate", type=float, default=600.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=9.0, help="seconds of load")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--poll", type=float, default=2.0, help="SCANOPT_RELOAD_POLL_S")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--work", type=Path, default=Path("var/bench/swap"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        result = run_swap(
            args.work,
            args.artifacts,
            rate=args.rate,
            duration_s=args.duration,
            workers=args.workers,
            poll_s=args.poll,
        )
    except LoadRunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print(result)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
