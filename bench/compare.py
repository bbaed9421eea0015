"""Side by side on a shared machine: `just compare REF` (wrk, interleaved rounds).

    python -m bench.compare fc3c520                  # 1 and 2 workers, 5 rounds of 5 s
    python -m bench.compare fc3c520 --rounds 3 --seconds 4 --workers 1

`REF` is exported (`git archive`) to a temporary directory and served from there with
this tree's virtualenv. Each round runs, back to back, the constant endpoint
(bench.ceiling, the same Granian options), scanopt from REF and scanopt from this tree,
in the default configuration (access log INFO, prediction log at share 1, A/B gate on,
the rotating 20,000-scan corpus); interleaving puts every server through the same
neighbours' load. It prints per-round req/s, the medians and each scanopt's median ratio
to the constant endpoint of the same round.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import msgspec

from bench.corpus import scan_bodies, write_bodies
from bench.plan import RunConfig, server_spec
from bench.servers import free_port, running_server
from bench.wrk import run_wrk

__all__ = ["main"]

_CORPUS = 20_000


def _export(ref: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def _req_s(run: RunConfig, root: Path, bodies: Path, work: Path, seconds: int) -> float:
    spec = server_spec(
        run, free_port(), artifacts=root / "artifacts", workdir=work, baseline_model=None
    )
    if run.server == "scanopt":
        # -P: import server from PYTHONPATH (the tree under test), not from the cwd.
        argv = [spec.argv[0], "-P", *spec.argv[1:]]
        spec = msgspec.structs.replace(spec, argv=argv, env={**spec.env, "PYTHONPATH": str(root)})
    with running_server(spec, work):
        url = f"{spec.base_url}/v1/predict"
        run_wrk(url, bodies, duration_s=1, workdir=work)  # warm up
        return run_wrk(url, bodies, duration_s=seconds, workdir=work).requests_per_s


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref", help="the commit to compare with, e.g. fc3c520")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    here = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="scanopt-compare-") as tmp:
        root = Path(tmp)
        before = _export(args.ref, root / "ref")
        work = root / "work"
        work.mkdir()
        bodies = write_bodies(work / "bodies.jsonl", scan_bodies(_CORPUS))
        for workers in args.workers:
            servers = {
                "ceiling": (RunConfig(name="ceiling", server="ceiling", workers=workers), here),
                args.ref: (
                    RunConfig(name="ref", server="scanopt", workers=workers, batcher=False),
                    before,
                ),
                "this tree": (
                    RunConfig(name="here", server="scanopt", workers=workers, batcher=False),
                    here,
                ),
            }
            figures: dict[str, list[float]] = {name: [] for name in servers}
            for round_ in range(args.rounds):
                for name, (run, tree) in servers.items():
                    figures[name].append(_req_s(run, tree, bodies, work, args.seconds))
                print(
                    f"{workers}w round {round_ + 1}: "
                    + ", ".join(f"{n} {v[-1]:,.0f}" for n, v in figures.items()),
                    flush=True,
                )
            ceiling = figures["ceiling"]
            print(f"{workers} worker(s), {args.rounds} rounds of {args.seconds} s, wrk -t1 -c16:")
            for name, values in figures.items():
                line = f"  {name:>10}: median {statistics.median(values):8,.0f} req/s"
                if name != "ceiling":
                    ratios = [v / c for v, c in zip(values, ceiling, strict=True)]
                    line += (
                        f", median ratio to the constant endpoint {statistics.median(ratios):.2f}"
                    )
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
