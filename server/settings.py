"""The server's settings: one frozen struct, built once from SCANOPT_* variables.

Every field `name` is read from the variable ``SCANOPT_<NAME>``; a missing variable keeps
the default below. `Settings.from_env` is called once (by the launcher, or by
`server.app.build_app` in each worker) and the struct is passed in explicitly from there.
A malformed value raises `SettingsError` naming the variable, the value and what was
expected, so start-up stops with one line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import msgspec

from server.errors import SettingsError

__all__ = ["ENV_PREFIX", "LOG_LEVELS", "Settings"]

ENV_PREFIX: Final = "SCANOPT_"
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
# prometheus_client reads this variable itself; the launcher sets it from metrics_dir.
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


def _default_workers() -> int:
    return os.cpu_count() or 1


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the server can be told; the README lists each variable."""

    host: str = "127.0.0.1"
    port: int = 8002
    workers: int = msgspec.field(default_factory=_default_workers)
    artifacts: Path = Path("artifacts")
    cors_origins: tuple[str, ...] = ()
    # None switches the admin endpoints off: they are not routed at all (404).
    admin_token: str | None = None
    store_dsn: str = "sqlite:///var/scanopt.db"
    # Connections (and store threads) per worker.
    store_pool_size: int = 4
    # Longest a worker serves an experiment config (kill switch, rollout) after a change.
    experiment_cache_s: float = 2.0
    # Share of predictions written to the prediction log (exposures are always written).
    prediction_log_share: float = 1.0
    # Rows a worker buffers while the store is slow or down; beyond this they are dropped
    # and counted (scanopt_store_dropped_total).
    prediction_log_capacity: int = 50_000
    prediction_log_batch: int = 500
    prediction_log_flush_s: float = 0.5
    # Off until the benchmark shows it pays (README, "Serving").
    batcher: bool = False
    batch_max_size: int = 32
    batch_max_wait_us: int = 500
    cache_size: int = 4096
    max_batch: int = 1000
    max_body_bytes: int = 4 * 1024 * 1024
    log_level: str = "INFO"
    intra_op_threads: int = 1
    metrics_dir: Path = Path("var/metrics")
    # Each worker checks artifacts/current this often and loads a new version by itself,
    # so every worker converges after a reload or promotion; 0 switches polling off.
    reload_poll_s: float = 2.0
    # Monitoring (README, "Monitoring"): how often the lease holder recomputes accuracy
    # rollups and gauges, how often each worker flushes its drift counts, the drift window,
    # how long rollups and drift counts are kept, and the fewest labelled outcomes a
    # figure is shown for.
    monitor_interval_s: float = 30.0
    drift_flush_s: float = 5.0
    drift_window_minutes: int = 60
    rollup_retention_days: int = 30
    accuracy_min_labelled: int = 30
    # How often the lease holder measures importance drift (permutation importances).
    importance_interval_s: float = 3600.0
    # Set (from PROMETHEUS_MULTIPROC_DIR) only when prometheus_client runs in multiprocess
    # mode, that is under the launcher; None in a single process such as the tests.
    multiproc_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `env` (default: os.environ); raises SettingsError on a bad value."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, parse in _PARSERS.items():
            var = ENV_PREFIX + name.upper()
            raw = env.get(var)
            if raw is None:
                continue
            try:
                values[name] = parse(raw.strip())
            except ValueError as exc:
                raise SettingsError(f"{var}={raw!r}: expected {exc}", field=var) from None
        multiproc = env.get(MULTIPROC_ENV)
        if multiproc:
            values["multiproc_dir"] = Path(multiproc)
        settings = cls(**values)
        if settings.batch_max_size > settings.max_batch:
            raise SettingsError(
                f"SCANOPT_BATCH_MAX_SIZE={settings.batch_max_size}: expected at most "
                f"SCANOPT_MAX_BATCH ({settings.max_batch})",
                field="SCANOPT_BATCH_MAX_SIZE",
            )
        return settings

    @staticmethod
    def unknown_variables(env: Mapping[str, str]) -> list[str]:
        """SCANOPT_* variables that name no setting (typos), for a start-up warning."""
        known = {ENV_PREFIX + name.upper() for name in _PARSERS}
        return sorted(
            k for k in env if k.startswith(ENV_PREFIX) and k not in known and "_TEST_" not in k
        )


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        expected = f"an integer from {low} to {high}"
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(expected) from None
        if not low <= value <= high:
            raise ValueError(expected)
        return value

    return parse


def _number(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        expected = f"a number from {low:g} to {high:g}"
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(expected) from None
        if not low <= value <= high:  # NaN fails this too
            raise ValueError(expected)
        return value

    return parse


def _switch(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "on", "true", "yes"}:
        return True
    if lowered in {"0", "off", "false", "no"}:
        return False
    raise ValueError("on/off (or 1/0, true/false, yes/no)")


def _text(raw: str) -> str:
    if not raw:
        raise ValueError("a non-empty value")
    return raw


def _path(raw: str) -> Path:
    return Path(_text(raw))


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip() for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ValueError(f"a comma-separated list of http(s)://host origins, got {origin!r}")
    return origins


def _token(raw: str) -> str | None:
    if raw and len(raw) < 16:
        raise ValueError("a token of at least 16 characters (or empty to switch admin off)")
    return raw or None


def _level(raw: str) -> str:
    if raw.upper() not in LOG_LEVELS:
        raise ValueError("one of " + ", ".join(LOG_LEVELS))
    return raw.upper()


_PARSERS: Final[dict[str, Callable[[str], Any]]] = {
    "host": _text,
    "port": _integer(1, 65535),
    "workers": _integer(1, 256),
    "artifacts": _path,
    "cors_origins": _origins,
    "admin_token": _token,
    "store_dsn": _text,
    "store_pool_size": _integer(1, 64),
    "experiment_cache_s": _number(0.1, 60.0),
    "prediction_log_share": _number(0.0, 1.0),
    "prediction_log_capacity": _integer(1, 10_000_000),
    "prediction_log_batch": _integer(1, 100_000),
    "prediction_log_flush_s": _number(0.01, 60.0),
    "batcher": _switch,
    "batch_max_size": _integer(1, 100_000),
    "batch_max_wait_us": _integer(0, 1_000_000),
    "cache_size": _integer(0, 10_000_000),
    "max_batch": _integer(1, 100_000),
    "max_body_bytes": _integer(1024, 1024**3),
    "log_level": _level,
    "intra_op_threads": _integer(1, 256),
    "metrics_dir": _path,
    "reload_poll_s": _number(0.0, 3600.0),
    "monitor_interval_s": _number(1.0, 3600.0),
    "drift_flush_s": _number(0.5, 600.0),
    "drift_window_minutes": _integer(1, 10_080),
    "rollup_retention_days": _integer(1, 3650),
    "accuracy_min_labelled": _integer(1, 1_000_000),
    "importance_interval_s": _number(10.0, 86_400.0),
}
