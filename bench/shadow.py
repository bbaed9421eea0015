"""What shadow scoring costs the answers: open-loop latency with and without a shadow.

    python -m bench.shadow [--rate 300] [--duration 8] [--rounds 3] [--workers 2]
                           [--share 1.0] [--artifacts artifacts] [--work var/bench/shadow]
                           [--out FILE]

The run builds a private artifacts folder (bench.swap.prepare_artifacts: the version
--artifacts/current names as champion and a challenger fitted quickly on generated
records), then, for each of --rounds rounds, starts `python -m server.serve` twice, back
to back in alternating order: once plain and once with SCANOPT_SHADOW_VERSION naming the
challenger at --share. Each server gets its own store and sends --rate /v1/predict
requests per second for --duration seconds after a one-second warm-up (bench.openloop:
latency from each request's intended send time, so a stall is charged in full). Any
failed request fails the run. After each shadow run the server's /metrics say how many
scans the shadow scored and dropped, so a run in which the shadow did no work shows.

Printed: per round and configuration p50, p99 and max latency; then the medians over
rounds and the shadow's ratio to plain. Interleaving puts both through the same
neighbours' load on a shared machine; the ratio is the figure to read, not the absolute.

First, in process (`in_process_costs`), the two costs the shadow adds: the observer call
on the request path (sample and append, the only shadow work before the answer leaves),
and the CPU per scan the background task spends between requests (encoding, the run, the
row), each the median of several timed repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import msgspec

from bench.corpus import scan_bodies
from bench.openloop import LoadRunError, OpenLoopConfig, run_open_loop
from bench.servers import ServerSpec, free_port, running_server
from bench.swap import prepare_artifacts
from server.dataplane import Served
from server.domain.scan import Scan
from server.experiments.gate import Decision
from server.inference.model import load_model
from server.schemas import Interval, Outcome
from server.shadow import SHADOW_BATCH, ShadowScorer, shadow_rows
from server.store.buffer import PredictionLog
from server.store.metrics import StoreMetrics
from server.store.sqlite import SqliteStore

__all__ = ["RoundFigures", "in_process_costs", "main", "run_round"]

_CORPUS: Final = 2000
_PLACEHOLDER: Final = Outcome(
    result_count=Interval(predicted=10.0, lower=5.0, upper=20.0),
    duration_s=Interval(predicted=2.0, lower=1.0, upper=4.0),
    p_empty=0.1,
    confidence=0.5,
)


class RoundFigures(msgspec.Struct, frozen=True, kw_only=True):
    """One server's open-loop run (latency in ms) and, with a shadow, what it did."""

    round: int
    shadow: bool
    achieved_rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    scored: float | None = None
    dropped: float | None = None


def in_process_costs(artifacts: Path, shadow: str, scans: list[Scan]) -> tuple[float, float]:
    """(observer call, background CPU per scored scan), both in microseconds."""
    from datetime import UTC, datetime

    from prometheus_client import CollectorRegistry

    model = load_model(artifacts, intra_op_threads=1, cache_size=0, version=shadow)
    served = [
        Served(
            scan=scan,
            decision=Decision(experiment="ml_scanning", arm="treatment", ml_enabled=True),
            prediction_id=f"{n:040x}",
            endpoint="predict",
            at=datetime.now(UTC),
            model_version="champion",
            predicted=None,
        )
        for n, scan in enumerate(scans)
    ]
    # The observer's whole work on a scan the model answered: sample, bound check, append.
    answered = [msgspec.structs.replace(s, predicted=_PLACEHOLDER) for s in served]

    async def observe() -> float:
        registry = CollectorRegistry()
        # A log over a store never opened: rows only queue in memory, nothing is written.
        log = PredictionLog(
            SqliteStore(Path("unused.db"), threads=1),
            StoreMetrics(registry),
            capacity=10**7,
            batch_size=10**7,
            flush_interval_s=60.0,
            share=1.0,
        )
        scorer = ShadowScorer(
            shadow,
            log,
            registry,
            load=lambda: model,
            share=1.0,
            capacity=10**7,
        )
        await scorer.start()
        rounds = []
        for _ in range(7):
            t0 = time.perf_counter_ns()
            for s in answered:
                scorer(s)
            rounds.append((time.perf_counter_ns() - t0) / len(answered) / 1e3)
            await scorer.drain()
        await scorer.stop()
        return statistics.median(rounds)

    observer_us = asyncio.run(observe())
    per_scan = []
    for _ in range(7):
        t0 = time.perf_counter_ns()
        for start in range(0, len(served), SHADOW_BATCH):
            shadow_rows(model, served[start : start + SHADOW_BATCH])
        per_scan.append((time.perf_counter_ns() - t0) / len(served) / 1e3)
    return observer_us, statistics.median(per_scan)


def _metric(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def run_round(
    round_no: int,
    shadow: str | None,
    *,
    artifacts: Path,
    work: Path,
    bodies: list[bytes],
    rate: float,
    duration_s: float,
    workers: int,
    share: float,
) -> RoundFigures:
    """Start one server (with or without the shadow), load it, stop it; its figures."""
    name = f"r{round_no}-{'shadow' if shadow else 'plain'}"
    state = work / name
    state.mkdir(parents=True, exist_ok=True)
    env = {
        "SCANOPT_PORT": "0",
        "SCANOPT_WORKERS": str(workers),
        "SCANOPT_ARTIFACTS": str(artifacts),
        "SCANOPT_STORE_DSN": f"sqlite:///{(state / 'scanopt.db').resolve()}",
        "SCANOPT_METRICS_DIR": str((state / "metrics").resolve()),
        "SCANOPT_RELOAD_POLL_S": "0",
        "SCANOPT_LOG_LEVEL": "WARNING",
    }
    if shadow is not None:
        env |= {"SCANOPT_SHADOW_VERSION": shadow, "SCANOPT_SHADOW_SHARE": str(share)}
    port = free_port()
    env["SCANOPT_PORT"] = str(port)
    spec = ServerSpec(name=name, argv=[sys.executable, "-m", "server.serve"], port=port, env=env)
    with running_server(spec, state):
        url = f"{spec.base_url}/v1/predict"
        warm = OpenLoopConfig(url=url, rate=rate, duration_s=1.0)
        warmed = asyncio.run(run_open_loop(warm, bodies))
        result = asyncio.run(
            run_open_loop(OpenLoopConfig(url=url, rate=rate, duration_s=duration_s), bodies)
        )
        # The shadow scores after the answers: give it a moment to finish the last batch.
        sent = warmed.requests + result.requests
        deadline = time.monotonic() + 5.0
        while True:
            with urllib.request.urlopen(f"{spec.base_url}/metrics", timeout=10) as answer:
                metrics = answer.read().decode()
            done = _metric(metrics, "scanopt_shadow_scored_total") + _metric(
                metrics, "scanopt_shadow_dropped_total"
            )
            if shadow is None or done >= sent or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    return RoundFigures(
        round=round_no,
        shadow=shadow is not None,
        achieved_rate=result.achieved_rate,
        p50_ms=result.latency.p50_ms,
        p99_ms=result.latency.p99_ms,
        max_ms=result.latency.max_ms,
        scored=_metric(metrics, "scanopt_shadow_scored_total") if shadow else None,
        dropped=_metric(metrics, "scanopt_shadow_dropped_total") if shadow else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--share", type=float, default=1.0)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--work", type=Path, default=Path("var/bench/shadow"))
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.rate <= 0 or args.duration <= 0 or not 0 < args.share <= 1:
        print("error: expected --rounds >= 1, --rate and --duration > 0, 0 < --share <= 1")
        return 2
    artifacts = (args.work / "artifacts").resolve()
    champion, challenger = prepare_artifacts(artifacts, args.artifacts)
    print(f"champion {champion}, shadow {challenger}, {args.workers} workers, {args.rate:g} req/s")
    bodies = scan_bodies(_CORPUS)
    observer_us, scan_us = in_process_costs(
        artifacts, challenger, [msgspec.json.decode(b, type=Scan) for b in bodies]
    )
    print(
        f"in process: observer call {observer_us:.2f} us per answered scan (on the request "
        f"path); shadow scoring {scan_us:.1f} us of CPU per scan (between requests, "
        f"batches of {SHADOW_BATCH})"
    )
    figures: list[RoundFigures] = []
    try:
        for r in range(1, args.rounds + 1):
            order = [None, challenger] if r % 2 else [challenger, None]
            for shadow in order:
                f = run_round(
                    r,
                    shadow,
                    artifacts=artifacts,
                    work=args.work,
                    bodies=bodies,
                    rate=args.rate,
                    duration_s=args.duration,
                    workers=args.workers,
                    share=args.share,
                )
                figures.append(f)
                extra = "" if not f.shadow else f"  scored {f.scored:.0f}, dropped {f.dropped:.0f}"
                print(
                    f"round {r} {'shadow' if f.shadow else 'plain ':6}  {f.achieved_rate:6.1f} "
                    f"req/s  p50 {f.p50_ms:7.2f} ms  p99 {f.p99_ms:8.2f} ms  max "
                    f"{f.max_ms:8.2f} ms{extra}"
                )
    except LoadRunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for key in ("p50_ms", "p99_ms", "max_ms"):
        plain = statistics.median(getattr(f, key) for f in figures if not f.shadow)
        shadowed = statistics.median(getattr(f, key) for f in figures if f.shadow)
        print(
            f"median {key[:-3]:4}: plain {plain:8.2f} ms, shadow {shadowed:8.2f} ms, "
            f"ratio {shadowed / plain:5.2f}"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(msgspec.json.encode(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
