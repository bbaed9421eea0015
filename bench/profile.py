"""Profile one scanopt worker under load: `just profile` (py-spy sampling, wrk driving).

    python -m bench.profile                 # 20 s of /v1/predict, uncached corpus
    python -m bench.profile --seconds 30 --out var/bench/profile

It starts the default configuration with one worker (access log INFO, prediction log at
share 1, A/B gate on), drives it flat out with wrk over the rotating 20,000-scan corpus,
and records the worker with `py-spy record --format raw --threads` (collapsed stacks of
every thread while it runs; idle waits are left out). It prints the frames with the most
samples of their own ("self") and those in the most stacks ("total"), and keeps the raw
stacks for a flame graph. py-spy needs root or ptrace rights.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.corpus import scan_bodies, write_bodies
from bench.plan import RunConfig, server_spec
from bench.servers import free_port, running_server
from bench.wrk import run_wrk

__all__ = ["main", "top_frames", "trace_one_worker"]

_CORPUS = 20_000
_LINE = re.compile(r":\d+\)$")  # "run (server/x.py:12)" -> "run (server/x.py)"


def top_frames(
    collapsed: str, n: int = 15
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(self, total) shares of samples per frame from py-spy's collapsed output.

    "self" counts the innermost Python frame of each sample (a sample with none, a native
    thread such as Granian's, counts as "(native)"); "total" counts scanopt's own frames
    (server/...) wherever they are in the stack.
    """
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_LINE.sub(")", f) for f in stack.split(";") if not f.startswith("thread (")]
        samples += count
        own[frames[-1] if frames else "(native)"] += count
        for frame in {f for f in frames if "(server/" in f}:
            total[frame] += count
    if samples == 0:
        return [], []

    def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(frame, count / samples) for frame, count in counter.most_common(n)]

    return share(own), share(total)


def trace_one_worker(
    name: str,
    artifacts: Path,
    out: Path,
    seconds: float,
    tracer: Callable[[int], list[str]],
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Start a 1-worker scanopt on the uncached corpus, warm it with wrk for 2 s, then run
    `tracer(worker_pid)` (a command that returns after `seconds`) while wrk keeps it busy;
    what the tracer returned (not checked: the caller knows its exit codes)."""
    out.mkdir(parents=True, exist_ok=True)
    bodies = write_bodies(out / "bodies.jsonl", scan_bodies(_CORPUS))
    run = RunConfig(name=name, server="scanopt", workers=1, batcher=False, env=env or {})
    spec = server_spec(run, free_port(), artifacts=artifacts, workdir=out, baseline_model=None)
    with running_server(spec, out) as server:
        url = f"{spec.base_url}/v1/predict"
        run_wrk(url, bodies, duration_s=2, workdir=out)  # warm the worker
        worker = server.worker_pids()[0]
        load = threading.Thread(
            target=run_wrk,
            args=(url, bodies),
            kwargs={"duration_s": seconds + 3, "workdir": out},
        )
        load.start()
        try:
            return subprocess.run(tracer(worker), check=False, capture_output=True)
        finally:
            load.join()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--out", type=Path, default=Path("var/bench/profile"))
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy is missing: pip install py-spy (the dev extra has it)", file=sys.stderr)
        return 2
    raw = args.out / "stacks.txt"
    traced = trace_one_worker(
        "profile scanopt 1w",
        args.artifacts,
        args.out,
        args.seconds,
        lambda worker: [
            *(spy, "record", "--pid", str(worker), "--duration", str(args.seconds)),
            *("--rate", "250", "--format", "raw", "--threads", "--nonblocking"),
            *("--output", str(raw)),
        ],
    )
    if traced.returncode != 0:
        print(f"py-spy failed ({traced.returncode}): {traced.stderr.decode()}", file=sys.stderr)
        return 1
    own, total = top_frames(raw.read_text())
    print(f"py-spy, 1 worker under wrk -t1 -c16, {args.seconds} s; share of samples")
    print("self:")
    for frame, share in own:
        print(f"  {share:6.1%}  {frame}")
    print("total (scanopt frames, anywhere in the stack):")
    for frame, share in total:
        print(f"  {share:6.1%}  {frame}")
    print(f"raw stacks: {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
