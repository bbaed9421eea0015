"""System calls per request of one scanopt worker under wrk: `just syscalls` (strace -c -f).

    python -m bench.syscalls                                   # defaults, 5 s
    python -m bench.syscalls --env SCANOPT_PREDICTION_LOG_SHARE=0 --seconds 8

It starts the default configuration with one worker (or with the `--env` settings), drives
it flat out with wrk over the rotating 20,000-scan corpus, attaches `strace -c -f` to the
worker for `--seconds` and prints each system call's count divided by the responses the
worker wrote meanwhile (one `writev` each). Unlike req/s these counts hardly depend on
what else the machine runs, so two settings or two trees can be compared on a busy
machine; `futex` counts GIL hand-offs between the worker's threads, and varies between
servers of the same code more than the others. strace needs root or ptrace rights.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.profile import trace_one_worker

__all__ = ["main", "per_response", "strace_counts"]


def strace_counts(summary: str) -> dict[str, int]:
    """{system call: calls} from the table `strace -c` writes."""
    counts: dict[str, int] = {}
    for line in summary.splitlines():
        fields = line.split()
        # "% time seconds usecs/call calls [errors] syscall"; the total row names "total".
        if len(fields) < 5 or not fields[0][0].isdigit() or fields[-1] == "total":
            continue
        counts[fields[-1]] = int(fields[3])
    return counts


def per_response(counts: dict[str, int]) -> dict[str, float]:
    """Each call's count per response written (`writev`), most frequent first."""
    responses = counts.get("writev", 0)
    if responses == 0:
        raise ValueError("no writev in the counts: expected one per response written")
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return {"total": sum(counts.values()) / responses} | {
        name: calls / responses for name, calls in ordered
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE setting")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--out", type=Path, default=Path("var/bench/syscalls"))
    args = parser.parse_args(argv)
    strace = shutil.which("strace")
    if strace is None:
        print("strace is missing: apt-get install strace", file=sys.stderr)
        return 2
    env = dict(item.split("=", 1) for item in args.env)
    summary = args.out / "strace.txt"
    # strace detaches on SIGINT, which `timeout` sends after the duration (exit 124).
    traced = trace_one_worker(
        "syscalls 1w",
        args.artifacts,
        args.out,
        args.seconds,
        lambda worker: [
            *("timeout", "-s", "INT", str(args.seconds)),
            *(strace, "-c", "-f", "-p", str(worker), "-o", str(summary)),
        ],
        env=env,
    )
    if traced.returncode not in (0, 124):
        print(f"strace failed ({traced.returncode}): {traced.stderr.decode()}", file=sys.stderr)
        return 1
    counts = per_response(strace_counts(summary.read_text()))
    settings = " ".join(args.env) or "defaults"
    print(f"strace -c -f, 1 worker under wrk -t1 -c16 ({settings}), {args.seconds} s:")
    print("system calls per response written")
    for name, value in list(counts.items())[:12]:
        print(f"  {value:7.2f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
