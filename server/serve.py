"""`python -m server.serve` (`just serve`): check, prepare, then run Granian.

Before any worker exists it checks the settings and the model version named by
artifacts/current (manifest, feature spec, checksums, then an onnxruntime load of the
graph, its signature and a warm-up), so a bad setting or a missing or damaged
model stops start-up with one line and a non-zero exit. It wipes the Prometheus
multiprocess directory and sets PROMETHEUS_MULTIPROC_DIR before anything imports
prometheus_client; Granian then forks the workers, each of which builds the app
(`server.app:build_app`), loads its own onnxruntime session and warms it.
"""

from __future__ import annotations

import importlib.util
import logging
import logging.config
import os
import sys
from pathlib import Path

from server.errors import ArtifactError, SettingsError
from server.inference.model import load_model
from server.logs import LOGGER_NAME, logging_config
from server.memory import fix_mmap_threshold, limit_malloc_arenas
from server.settings import MULTIPROC_ENV, Settings

__all__ = ["WORKER_KILL_TIMEOUT_S", "main", "prepare_metrics_dir"]

APP_FACTORY = "server.app:build_app"
# Seconds a worker gets to finish its requests at shutdown before it is killed (a
# container's grace period must be longer: deploy/k8s/deployment.yaml).
WORKER_KILL_TIMEOUT_S = 10


def prepare_metrics_dir(path: Path) -> Path:
    """Create the multiprocess metrics directory and delete the samples of past runs."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # only prometheus_client's files, nothing else
        stale.unlink()
    return path.resolve()


def main() -> int:
    """Run the server until interrupted; the exit status says why it stopped."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"scanopt: bad setting: {exc.message}", file=sys.stderr)
        return 2
    if settings.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        print(
            "scanopt: bad setting: SCANOPT_LOOP=uvloop: uvloop is not installed here "
            "(pip install uvloop, or SCANOPT_LOOP=asyncio)",
            file=sys.stderr,
        )
        return 2
    # First, while this process has one thread: every worker Granian forks inherits it.
    limit_malloc_arenas(settings.malloc_arenas)
    fix_mmap_threshold(settings.malloc_mmap_threshold)
    logging.config.dictConfig(logging_config(settings.log_level))
    logger = logging.getLogger(LOGGER_NAME)
    for name in Settings.unknown_variables(os.environ):
        logger.warning("unknown setting ignored", extra={"fields": {"variable": name}})
    try:
        # The workers' whole load, the verification `just validate` and every hot reload
        # run too (server.inference.artifacts), so a version whose graph is truncated or
        # lacks an output its manifest lists stops start-up here, with the reason they
        # would give, instead of leaving every worker not ready. One thread, no pool to inherit; the
        # session is dropped before the fork: each worker builds its own after it.
        checked = load_model(settings.artifacts, intra_op_threads=1, cache_size=0)
    except ArtifactError as exc:
        print(f"scanopt: cannot serve: {exc.message}", file=sys.stderr)
        return 1
    model_version = checked.version
    del checked
    if settings.shadow_version is not None:
        # The shadow version is verified and loaded exactly like a served one, so a
        # missing or damaged challenger stops start-up instead of failing in every worker.
        try:
            shadow = load_model(
                settings.artifacts,
                intra_op_threads=1,
                cache_size=0,
                version=settings.shadow_version,
            )
        except ArtifactError as exc:
            print(
                f"scanopt: cannot shadow (SCANOPT_SHADOW_VERSION): {exc.message}", file=sys.stderr
            )
            return 1
        del shadow
    os.environ[MULTIPROC_ENV] = str(prepare_metrics_dir(settings.metrics_dir))

    # Imported only now: nothing above may pull in prometheus_client before the variable.
    # Importing the app here (not building it) lets forked workers share the imports,
    # which halves their start-up; sessions are still built after the fork.
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    import server.app  # noqa: F401

    logger.info(
        "starting",
        extra={
            "fields": {
                "host": settings.host,
                "port": settings.port,
                "workers": settings.workers,
                "model_version": model_version,
                "batcher": settings.batcher,
                "loop": settings.loop,
                "shadow_version": settings.shadow_version,
                "shadow_share": settings.shadow_share,
                "malloc_arenas": os.environ.get("MALLOC_ARENA_MAX", "glibc default"),
                "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_", "sliding"),
            }
        },
    )
    Granian(
        APP_FACTORY,
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops(settings.loop),
        log_level=LogLevels(settings.log_level.lower()),
        log_dictconfig=logging_config(settings.log_level),
        respawn_failed_workers=True,
        workers_kill_timeout=WORKER_KILL_TIMEOUT_S,
    ).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
