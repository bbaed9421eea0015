"""The server's settings: one frozen struct, built once from SCANOPT_* variables.

Each field is declared once, below: its type, default, range (msgspec `Meta`
constraints) and meaning (`description`). Field `name` is read from ``SCANOPT_<NAME>``; a
missing variable keeps the default. `Settings.from_env` is called once (by the launcher,
or by `server.app.build_app` in each worker) and the struct is passed in explicitly from
there; constructors take their values from it. A malformed value raises `SettingsError`
naming the variable, the value (never for a secret: the admin token and the store DSN,
which may hold a password) and what was expected, worded from the same declaration, so
start-up stops with one line before any worker starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec

from server.errors import SettingsError
from server.store import dsn_target

__all__ = ["ENV_PREFIX", "LOG_LEVELS", "MULTIPROC_ENV", "Settings"]

ENV_PREFIX: Final = "SCANOPT_"
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
# prometheus_client reads this variable itself; the launcher sets it from metrics_dir.
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
_SWITCH: Final = {"1": True, "on": True, "true": True, "yes": True}
_SWITCH_OFF: Final = {"0": False, "off": False, "false": False, "no": False}
_AT: Final = re.compile(r"at `\$\.(?P<name>\w+)")


def _int(low: int, high: int, description: str) -> Any:
    return msgspec.Meta(ge=low, le=high, description=description)


def _num(low: float, high: float, description: str) -> Any:
    return msgspec.Meta(ge=low, le=high, description=description)


def _text(description: str) -> Any:
    return msgspec.Meta(min_length=1, description=description)


def _switch(description: str) -> Any:
    return msgspec.Meta(
        description=description, extra={"expected": "on/off (or 1/0, true/false, yes/no)"}
    )


def _path(description: str) -> Any:
    return msgspec.Meta(description=description, extra={"expected": "a non-empty path"})


def _default_workers() -> int:
    return os.cpu_count() or 1


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the server can be told; the README lists each variable."""

    host: Annotated[str, _text("address to bind; 0.0.0.0 in containers")] = "127.0.0.1"
    port: Annotated[int, _int(1, 65535, "port")] = 8002
    workers: Annotated[int, _int(1, 256, "Granian worker processes")] = msgspec.field(
        default_factory=_default_workers
    )
    artifacts: Annotated[Path, _path("directory holding current and models/<version>/")] = Path(
        "artifacts"
    )
    cors_origins: Annotated[
        tuple[str, ...],
        msgspec.Meta(
            description="comma-separated origins allowed by CORS",
            extra={"expected": "a comma-separated list of http(s)://host origins"},
        ),
    ] = ()
    # None switches the admin endpoints off: they are not routed at all (404).
    admin_token: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=16,
                description="bearer token of /v1/admin/*",
                extra={
                    "expected": "a token of at least 16 characters (or empty to switch admin off)"
                },
            ),
        ]
        | None
    ) = None
    store_dsn: Annotated[str, _text("sqlite:///path.db or postgresql://...")] = (
        "sqlite:///var/scanopt.db"
    )
    store_pool_size: Annotated[int, _int(1, 64, "store connections (and threads) per worker")] = 4
    experiment_cache_s: Annotated[
        float, _num(0.1, 60.0, "longest a worker serves an experiment config after a change")
    ] = 2.0
    prediction_log_share: Annotated[
        float, _num(0.0, 1.0, "share of predictions written to the prediction log")
    ] = 1.0
    # Beyond this, rows are dropped and counted (scanopt_store_dropped_total).
    prediction_log_capacity: Annotated[
        int, _int(1, 10_000_000, "rows a worker buffers while the store is slow or down")
    ] = 50_000
    prediction_log_batch: Annotated[int, _int(1, 100_000, "rows per prediction-log write")] = 500
    prediction_log_flush_s: Annotated[
        float, _num(0.01, 60.0, "longest a logged prediction waits before it is written")
    ] = 0.5
    # Off until the benchmark shows it pays (README, "Serving").
    batcher: Annotated[bool, _switch("micro-batch concurrent /v1/predict calls")] = False
    batch_max_size: Annotated[int, _int(1, 100_000, "most rows per micro-batch")] = 32
    batch_max_wait_us: Annotated[
        int, _int(0, 1_000_000, "longest the oldest queued request waits, in microseconds")
    ] = 500
    cache_size: Annotated[int, _int(0, 10_000_000, "prediction cache entries per worker")] = 4096
    max_batch: Annotated[int, _int(1, 100_000, "most scans per batch call")] = 1000
    max_body_bytes: Annotated[int, _int(1024, 1024**3, "largest request body")] = 4 * 1024 * 1024
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        msgspec.Meta(
            description="log level", extra={"expected": "one of " + ", ".join(LOG_LEVELS)}
        ),
    ] = "INFO"
    # Lines below WARNING wait in memory this long at most and go out in a few writes
    # instead of one write and flush each (README, "Benchmarks", for what that costs).
    log_flush_s: Annotated[
        float,
        _num(0.0, 10.0, "longest a worker holds a log line below WARNING; 0 writes each at once"),
    ] = 0.2
    intra_op_threads: Annotated[int, _int(1, 256, "onnxruntime threads per session")] = 1
    # Granian runs each worker's app on this loop; the benchmark's constant endpoint gets
    # the same one (README, "Benchmarks", for what uvloop changed).
    loop: Annotated[
        Literal["uvloop", "asyncio"],
        msgspec.Meta(
            description="the workers' event loop: uvloop, or the standard library's asyncio",
            extra={"expected": "uvloop or asyncio"},
        ),
    ] = "uvloop"
    # glibc malloc arenas per process (server/memory.py says why); 0 keeps glibc's
    # default of 8 per core, and MALLOC_ARENA_MAX set in the environment wins.
    malloc_arenas: Annotated[
        int, _int(0, 1024, "glibc malloc arenas per process; 0 leaves glibc's default")
    ] = 2
    # Blocks this large and larger get their own mmap, at a threshold glibc no longer
    # raises (server/memory.py says why); 0 keeps glibc's sliding threshold.
    malloc_mmap_threshold: Annotated[
        int,
        _int(0, 32 * 1024 * 1024, "glibc's mmap threshold in bytes; 0 leaves it sliding"),
    ] = 128 * 1024
    # A ready worker takes its start-up objects out of the garbage collector's walks
    # (server/heap.py says what a full collection of them cost).
    gc_freeze: Annotated[
        bool, _switch("freeze a ready worker's start-up objects out of garbage collections")
    ] = True
    metrics_dir: Annotated[Path, _path("Prometheus multiprocess directory")] = Path("var/metrics")
    # Each worker checks artifacts/current this often and loads a new version by itself,
    # so every worker converges after a reload or promotion; 0 switches polling off.
    reload_poll_s: Annotated[
        float, _num(0.0, 3600.0, "how often each worker checks artifacts/current")
    ] = 2.0
    # Monitoring (README, "Monitoring"). Off leaves serving, /metrics and the prediction
    # log as they are, and stops the per-request drift counting, the history rollups and
    # the scheduled monitoring jobs: the pair `just bench` compares.
    monitoring: Annotated[
        bool, _switch("drift counting, history rollups and the scheduled monitoring jobs")
    ] = True
    monitor_interval_s: Annotated[
        float, _num(1.0, 3600.0, "how often the lease holder recomputes rollups and gauges")
    ] = 30.0
    drift_flush_s: Annotated[
        float, _num(0.5, 600.0, "how often each worker adds its drift counts to the store")
    ] = 5.0
    drift_window_minutes: Annotated[int, _int(1, 10_080, "the drift window, in minutes")] = 60
    rollup_retention_days: Annotated[
        int, _int(1, 3650, "days monitoring rollups and drift counts are kept")
    ] = 30
    accuracy_min_labelled: Annotated[
        int, _int(1, 1_000_000, "fewest labelled outcomes an accuracy figure is shown for")
    ] = 30
    importance_interval_s: Annotated[
        float, _num(10.0, 86_400.0, "how often importance drift is measured")
    ] = 3600.0
    # Probation after a promotion, and the automatic rollback (README, "Model lifecycle").
    probation: Annotated[
        bool, _switch("watch a newly promoted version and roll back to its parent if it fails")
    ] = True
    probation_outcomes: Annotated[
        int, _int(1, 10_000_000, "labelled outcomes of the new version after which it passed")
    ] = 2000
    probation_minutes: Annotated[
        float, _num(1.0, 10_080.0, "minutes after the promotion after which it passed")
    ] = 120.0
    probation_min_labelled: Annotated[
        int, _int(1, 10_000_000, "fewest labelled outcomes before accuracy is judged")
    ] = 1000
    probation_min_requests: Annotated[
        int, _int(1, 10_000_000, "fewest prediction requests before the 5xx share is judged")
    ] = 200
    # Shadow scoring (README, "Shadow scoring"): a challenger version scores a share of
    # the answered scans after the answer is sent; its rows go to the prediction log
    # flagged as shadow rows, never counted as served. None: no shadow.
    shadow_version: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
                description="version folder under artifacts/models scored as a shadow",
                extra={
                    "expected": "a version folder name under artifacts/models (letters, "
                    "digits, '.', '_' or '-'), or empty for no shadow"
                },
            ),
        ]
        | None
    ) = None
    shadow_share: Annotated[
        float, _num(0.0, 1.0, "share of answered scans the shadow version scores")
    ] = 1.0
    # Beyond this many scans waiting for the shadow, new ones are dropped and counted
    # (scanopt_shadow_dropped_total); the answer never waits for the shadow.
    shadow_queue: Annotated[
        int, _int(1, 1_000_000, "scans a worker queues for the shadow version")
    ] = 10_000
    # Set (from PROMETHEUS_MULTIPROC_DIR) only when prometheus_client runs in multiprocess
    # mode, that is under the launcher; None in a single process such as the tests.
    multiproc_dir: Path | None = None

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.__rich_repr__())
        return f"Settings({shown})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        """The fields for rich and repr(), secrets (the token, the DSN) not shown."""
        values = [(name, getattr(self, name)) for name in self.__struct_fields__]
        return [(n, "(not shown)" if n in _SECRET and v is not None else v) for n, v in values]

    def __post_init__(self) -> None:
        """The rules that span a value's shape: origins, the DSN, batch sizes."""
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise SettingsError(
                    f"SCANOPT_CORS_ORIGINS={','.join(self.cors_origins)!r}: expected a "
                    f"comma-separated list of http(s)://host origins, got {origin!r}",
                    field="SCANOPT_CORS_ORIGINS",
                )
        try:
            dsn_target(self.store_dsn)  # the store's own rule, checked before any worker
        except ValueError as exc:
            raise SettingsError(
                f"SCANOPT_STORE_DSN=(value not shown): expected {exc}", field="SCANOPT_STORE_DSN"
            ) from None
        if self.probation_min_labelled > self.probation_outcomes:
            raise SettingsError(
                f"SCANOPT_PROBATION_MIN_LABELLED={self.probation_min_labelled}: expected at "
                f"most SCANOPT_PROBATION_OUTCOMES ({self.probation_outcomes})",
                field="SCANOPT_PROBATION_MIN_LABELLED",
            )
        if self.batch_max_size > self.max_batch:
            raise SettingsError(
                f"SCANOPT_BATCH_MAX_SIZE={self.batch_max_size}: expected at most "
                f"SCANOPT_MAX_BATCH ({self.max_batch})",
                field="SCANOPT_BATCH_MAX_SIZE",
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `env` (default: os.environ); raises SettingsError on a bad value."""
        env = os.environ if env is None else env
        raw: dict[str, str] = {}
        for name in _FIELDS:
            value = env.get(ENV_PREFIX + name.upper())
            if value is not None:
                raw[name] = value
        values: dict[str, Any] = {
            name: _prepare(name, value.strip()) for name, value in raw.items()
        }
        multiproc = env.get(MULTIPROC_ENV)
        if multiproc:
            values["multiproc_dir"] = multiproc
        try:
            return msgspec.convert(values, cls, strict=False, dec_hook=_decode_path)
        except msgspec.ValidationError as exc:
            found = _AT.search(str(exc))
            if found is None or found["name"] not in raw:
                raise SettingsError(str(exc)) from None
            name = found["name"]
            var = ENV_PREFIX + name.upper()
            shown = "(value not shown)" if name in _SECRET else repr(raw[name])
            raise SettingsError(f"{var}={shown}: expected {_expected(name)}", field=var) from None

    @staticmethod
    def unknown_variables(env: Mapping[str, str]) -> list[str]:
        """SCANOPT_* variables that name no setting (typos), for a start-up warning."""
        known = {ENV_PREFIX + name.upper() for name in _FIELDS}
        return sorted(
            k for k in env if k.startswith(ENV_PREFIX) and k not in known and "_TEST_" not in k
        )


# A token, or a DSN's password, must not reach a log: errors name the variable only.
_SECRET: Final = frozenset({"admin_token", "store_dsn"})
_INFO: Final = {
    f.name: f.type
    for f in msgspec.inspect.type_info(Settings).fields  # type: ignore[attr-defined]
}
# On/off settings: their words (on, off, yes, no, ...) are read the same way.
_SWITCHES: Final = frozenset(
    name
    for name, info in _INFO.items()
    if isinstance(getattr(info, "type", info), msgspec.inspect.BoolType)
)
_FIELDS: Final = tuple(name for name in _INFO if name != "multiproc_dir")


def _prepare(name: str, value: str) -> Any:
    """The variable's text as msgspec should convert it (switch words, lists, an empty token)."""
    if name in _SWITCHES:
        return {**_SWITCH, **_SWITCH_OFF}.get(value.lower(), value)
    if name == "cors_origins":
        return [o.strip() for o in value.split(",") if o.strip()]
    if name in ("admin_token", "shadow_version"):
        return value or None
    if name == "log_level":
        return value.upper()
    if name == "loop":
        return value.lower()
    return value


def _decode_path(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str):
        if not value:
            raise ValueError("a non-empty path")
        return Path(value)
    raise NotImplementedError


def _expected(name: str) -> str:
    """What a field accepts, worded from its declaration."""
    info = _INFO[name]
    if isinstance(info, msgspec.inspect.UnionType):  # X | None
        info = next(t for t in info.types if not isinstance(t, msgspec.inspect.NoneType))
    extra = getattr(info, "extra", None) or {}
    if "expected" in extra:
        return str(extra["expected"])
    kind = getattr(info, "type", info)
    if isinstance(kind, msgspec.inspect.IntType):
        return f"an integer from {kind.ge} to {kind.le}"
    if isinstance(kind, msgspec.inspect.FloatType):
        return f"a number from {kind.ge:g} to {kind.le:g}"
    return "a non-empty value"
