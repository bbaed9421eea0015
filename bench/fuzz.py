"""`just fuzz`: schemathesis against a private server's own OpenAPI document, at length.

Starts `python -m server.serve` (2 workers, admin routes on with a throwaway token, an
empty SQLite store in a temporary directory) on the model at artifacts/current, then runs
`schemathesis run` with every check (no 5xx, status codes, content types, headers and
bodies as documented, invalid data rejected, valid data accepted, ...) over every
operation, in the examples, coverage and fuzzing phases. Schema-valid cases keep the rules
JSON Schema cannot state (bench.fuzz_rules, loaded as schemathesis hooks). Reports (JUnit,
NDJSON) go to var/fuzz/. The exit status is schemathesis's: 0 only when no check failed.

Options after `just fuzz` go to schemathesis (e.g. `--max-examples 20`, `--seed N`,
`--include-path /v1/predict`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.servers import ServerSpec, free_port, running_server

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MAX_EXAMPLES = 100  # per operation and phase: thousands of requests in all


def main(argv: list[str] | None = None) -> int:
    """Serve, fuzz, stop; schemathesis's exit status."""
    extra = sys.argv[1:] if argv is None else argv
    artifacts = REPO / "artifacts"
    if not (artifacts / "current").is_file():
        print(f"{artifacts / 'current'} does not exist: make a model first (`just model`)")
        return 2
    out = REPO / "var" / "fuzz"
    out.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    home = Path(tempfile.mkdtemp(prefix="scanopt-fuzz-"))
    try:
        port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("SCANOPT_")}
        base.pop("PROMETHEUS_MULTIPROC_DIR", None)
        spec = ServerSpec(
            name="scanopt-fuzz",
            argv=[sys.executable, "-m", "server.serve"],
            port=port,
            env={
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), base.get("PYTHONPATH")) if p),
                "SCANOPT_PORT": str(port),
                "SCANOPT_WORKERS": "2",
                "SCANOPT_ARTIFACTS": str(artifacts),
                "SCANOPT_ADMIN_TOKEN": token,
                "SCANOPT_STORE_DSN": f"sqlite:///{home / 'store.db'}",
                "SCANOPT_METRICS_DIR": str(home / "metrics"),
                "SCANOPT_LOG_LEVEL": "WARNING",
                "SCANOPT_RELOAD_POLL_S": "0",
            },
        )
        with running_server(spec, out, base_env=base):
            command = [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{spec.base_url}/schema/openapi.json",
                "--checks",
                "all",
                "--header",
                f"Authorization: Bearer {token}",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                str(DEFAULT_MAX_EXAMPLES),
                "--continue-on-failure",  # keep fuzzing an operation after its first failure
                # The first report or drift answer imports scipy and matplotlib (seconds,
                # and over schemathesis's default 10 s on a machine at load 18): this run
                # checks what answers say, latency is the benchmarks' business.
                "--request-timeout",
                "60",
                # One thread: with two, hypothesis parsing lambdas' source in both threads
                # at once raised CPython's "AST constructor recursion depth mismatch"
                # SystemError here (Python 3.11; see python/cpython#106905), which
                # schemathesis reports as a runtime error of the operation.
                "--workers",
                "1",
                "--report",
                "junit,ndjson",
                "--report-dir",
                str(out),
                *extra,
            ]
            hooks = {"SCHEMATHESIS_HOOKS": "bench.fuzz_rules", "PYTHONPATH": spec.env["PYTHONPATH"]}
            return subprocess.run(command, check=False, env={**base, **hooks}).returncode
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
