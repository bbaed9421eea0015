"""Instructions per request, counted by callgrind: `just instructions` (needs valgrind).

    python -m bench.instructions                        # ceiling, scanopt, and each part off
    python -m bench.instructions --requests 500 --only ceiling scanopt

Each configuration runs in its own process under `valgrind --tool=callgrind
--instr-atstart=no`: the app (scanopt's, with its default settings, or the constant
endpoint) is driven in process through raw ASGI messages, no HTTP server, over the
rotating 20,000-scan corpus, so every counted request runs the model. The process warms
up with counting off (valgrind without instrumentation runs a few times slower than
native), then `callgrind_control` turns counting on for `--requests` requests and
dumps. Background tasks run between requests (the driver yields to the event loop after
each one), so the prediction log's writes and the access log's held lines are counted
with the requests that made them.

Why instructions: on a shared 2-core machine wall-clock figures of the same code swung
by 2-3x between hours, while a count of executed instructions is the same from run to
run (it does not see cache misses or contention, which is why it is a guide to where
the work is, not a latency). What it leaves out: Granian's own threads and its ASGI
bridge, which the constant endpoint pays too. valgrind slows the clock ~50x, so every
timer would fire ~50x more often per request than at full speed. The monitoring jobs, the
drift flush, the gate's config refresh and the model watcher are set to their longest
intervals here, and the dashboard's sampler is stopped after the warm-up (drift counting
per request stays on). So are the two logs' flush intervals, so that the prediction log
writes full batches of SCANOPT_PREDICTION_LOG_BATCH rows and the access log whole 4 KiB
writes, as they do under load. The access lines go to /dev/null (the count is of user-space
instructions; no system call's kernel time is in it).

The configurations with a part "off" say what that part costs: `metrics` makes every
Prometheus value update a no-op, `log` sets SCANOPT_PREDICTION_LOG_SHARE=0 (first
exposures are still written), `access` logs at WARNING, `observer` removes the HTTP
observer (its metrics, request id and access line). Results: a table, and JSON in
var/bench/instructions/.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import msgspec
from rich.console import Console
from rich.table import Table

from bench.corpus import scan_bodies
from bench.plan import RunConfig, server_spec
from server.serve import prepare_metrics_dir
from server.settings import MULTIPROC_ENV

__all__ = ["Count", "callgrind_total", "count", "main"]

CONFIGS: Final = ("ceiling", "scanopt", "metrics", "log", "access", "observer")
_ENV: Final = {
    "log": {"SCANOPT_PREDICTION_LOG_SHARE": "0"},
    "access": {"SCANOPT_LOG_LEVEL": "WARNING"},
}
# Timers at their longest intervals (see the module docstring): the monitoring jobs, and
# the two logs' flushes, so that they write when their batches fill, as under load.
_QUIET: Final = {
    "SCANOPT_MONITOR_INTERVAL_S": "3600",  # the lease holder's jobs and probation
    "SCANOPT_DRIFT_FLUSH_S": "600",
    "SCANOPT_EXPERIMENT_CACHE_S": "60",  # the gate re-reads its configs every 30 s
    "SCANOPT_RELOAD_POLL_S": "3600",  # the model watcher
    "SCANOPT_PREDICTION_LOG_FLUSH_S": "60",
    "SCANOPT_LOG_FLUSH_S": "10",
}
_WARMUP: Final = 2_000
_SUMMARY: Final = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


class Count(msgspec.Struct, frozen=True, kw_only=True):
    """One configuration's count."""

    config: str
    requests: int
    instructions: int

    @property
    def per_request(self) -> float:
        return self.instructions / self.requests


def callgrind_total(dump: str) -> int:
    """The instructions a callgrind dump counted (its `summary:` or `totals:` line)."""
    found = _SUMMARY.search(dump)
    if found is None:
        raise ValueError("no summary: or totals: line in the callgrind dump")
    return int(found.group(1))


# --- the child: an app driven in process --------------------------------------------------


def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/predict",
        "raw_path": b"/v1/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


class _Driver:
    """Sends POST /v1/predict requests to an ASGI app, one at a time, rotating the bodies."""

    def __init__(self, app: Any, bodies: list[bytes]) -> None:
        self._app = app
        self._bodies = bodies
        self._next = 0

    async def run(self, n: int) -> None:
        for _ in range(n):
            body = self._bodies[self._next % len(self._bodies)]
            self._next += 1
            sent: list[dict[str, Any]] = []
            delivered = False

            async def receive(body: bytes = body) -> dict[str, Any]:
                nonlocal delivered
                if not delivered:
                    delivered = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await asyncio.Event().wait()  # never disconnects
                raise AssertionError("unreachable")

            async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
                sent.append(message)

            await self._app(_scope(body), receive, send)
            status = sent[0].get("status") if sent else None
            if status != 200:
                raise RuntimeError(f"expected 200 from /v1/predict, got {status}: {sent[1:]}")
            await asyncio.sleep(0)  # let background tasks (the logs' writers) run


def _app(config: str) -> Any:
    if config == "ceiling":
        from bench.ceiling import create_app

        return create_app()
    import logging.config

    from server.app import build_app  # reads SCANOPT_* set by the parent
    from server.logs import logging_config
    from server.settings import Settings

    # As the launcher does: JSON lines on stdout (here /dev/null), the access log at INFO.
    logging.config.dictConfig(logging_config(Settings.from_env().log_level))
    app = build_app()
    if config == "metrics":
        from prometheus_client import values

        values.ValueClass.inc = lambda self, amount: None
        values.ValueClass.set = lambda self, value, timestamp=None: None
    if config == "observer":
        from server.monitoring.http import HttpObserver

        observer = app.asgi_handler
        assert isinstance(observer, HttpObserver)
        app.asgi_handler = observer.app
    return app


async def _child(config: str, requests: int, warmup: int) -> None:
    app = _app(config)
    driver = _Driver(app, scan_bodies(20_000))
    async with app.lifespan():
        await driver.run(warmup)
        if config != "ceiling":
            # The dashboard renders and parses /metrics every 15 s, a period no setting
            # changes; stretched ~50x it landed in some counts and not others (954,512
            # against 1,055,675 for the same code). It is not per-request work: stop it.
            await app.state.worker.dashboard.stop()
        print("READY", file=sys.stderr, flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await driver.run(requests)
        print("DONE", file=sys.stderr, flush=True)
        await asyncio.to_thread(sys.stdin.readline)


# --- the parent: valgrind and callgrind_control ---------------------------------------------


def _child_env(config: str, workdir: Path, artifacts: Path) -> dict[str, str]:
    """The settings `just bench` gives a scanopt server (its own store and metrics files
    under `workdir`), with this configuration's and this tool's on top."""
    run = RunConfig(
        name=config,
        server="scanopt",
        workers=1,
        batcher=False,
        env={**_QUIET, **_ENV.get(config, {})},
    )
    # The port is a setting like any other (1-65535); nothing listens on it in process.
    spec = server_spec(
        run, 8002, artifacts=artifacts.resolve(), workdir=workdir, baseline_model=None
    )
    return {
        **os.environ,
        **spec.env,
        # As the launcher does, before prometheus_client is imported.
        MULTIPROC_ENV: str(prepare_metrics_dir(Path(spec.env["SCANOPT_METRICS_DIR"]))),
        # One string hash for every run: dict and set layouts, and so the count, repeat.
        "PYTHONHASHSEED": "0",
    }


def _expect(process: subprocess.Popen[str], word: str) -> None:
    assert process.stderr is not None
    said: list[str] = []
    for line in process.stderr:
        if line.strip() == word:
            return
        said = [*said[-20:], line]
    raise RuntimeError(
        f"the child exited (status {process.wait()}) before printing {word}:\n" + "".join(said)
    )


def count(
    config: str, requests: int, artifacts: Path, workdir: Path, *, warmup: int = _WARMUP
) -> Count:
    """Instructions of `requests` requests of one configuration, under callgrind, after
    `warmup` uncounted ones."""
    dump = workdir / "callgrind.out"
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={dump}",
        f"--log-file={workdir / 'valgrind.log'}",
        sys.executable,
        "-m",
        "bench.instructions",
        "--child",
        config,
        "--requests",
        str(requests),
        "--warmup",
        str(warmup),
    ]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,  # the access lines
        stderr=subprocess.PIPE,  # READY and DONE, and any traceback
        text=True,
        env=_child_env(config, workdir, artifacts),
    )
    assert process.stdin is not None
    pid = str(process.pid)
    try:
        _expect(process, "READY")
        subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
        process.stdin.write("go\n")
        process.stdin.flush()
        _expect(process, "DONE")
        subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
        process.stdin.write("quit\n")
        process.stdin.flush()
        process.wait(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    counted = dump.with_name(dump.name + ".1")  # the requested dump; the exit's is `dump`
    if not counted.exists():
        raise RuntimeError(f"callgrind wrote no dump for {config}; see {workdir / 'valgrind.log'}")
    return Count(
        config=config, requests=requests, instructions=callgrind_total(counted.read_text())
    )


def _table(counts: list[Count]) -> Table:
    by = {c.config: c.per_request for c in counts}
    table = Table(title="Instructions per POST /v1/predict, in process (callgrind)")
    for name in ("configuration", "instructions/request", "vs scanopt", "ceiling / this"):
        table.add_column(name, justify="left" if name == "configuration" else "right")
    labels = {
        "ceiling": "constant endpoint",
        "scanopt": "scanopt, defaults",
        "metrics": "scanopt, metric updates no-ops",
        "log": "scanopt, prediction log share 0",
        "access": "scanopt, access log at WARNING",
        "observer": "scanopt, no HTTP observer",
    }
    for c in counts:
        delta = (
            ""
            if "scanopt" not in by or c.config == "ceiling"
            else f"{c.per_request - by['scanopt']:+,.0f}"
        )
        ratio = f"{by['ceiling'] / c.per_request:.2f}" if "ceiling" in by else ""
        table.add_row(labels[c.config], f"{c.per_request:,.0f}", delta, ratio)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--warmup", type=int, default=_WARMUP, help="uncounted requests first")
    parser.add_argument("--only", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--out", type=Path, default=Path("var/bench/instructions"))
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        asyncio.run(_child(args.child, args.requests, args.warmup))
        return 0
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if missing:
        print(f"{', '.join(missing)} missing: apt-get install valgrind", file=sys.stderr)
        return 2
    console = Console()
    counts = []
    for config in args.only:
        with tempfile.TemporaryDirectory(prefix=f"scanopt-instructions-{config}-") as tmp:
            found = count(config, args.requests, args.artifacts, Path(tmp), warmup=args.warmup)
        counts.append(found)
        console.print(f"{config}: {found.per_request:,.0f} instructions/request", highlight=False)
    console.print(_table(counts))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out / f"{stamp}.json"
    out.write_bytes(
        msgspec.json.encode(
            [{**msgspec.structs.asdict(c), "per_request": c.per_request} for c in counts]
        )
    )
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
