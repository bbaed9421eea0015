"""Settings from SCANOPT_* variables: defaults, parsing, and one-line refusals."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from server.errors import SettingsError
from server.settings import Settings


def test_defaults_without_variables() -> None:
    """An empty environment gives the documented defaults."""
    settings = Settings.from_env({})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8002
    assert settings.workers == (os.cpu_count() or 1)
    assert settings.artifacts == Path("artifacts")
    assert settings.cors_origins == ()
    assert settings.admin_token is None
    assert settings.store_dsn == "sqlite:///var/scanopt.db"
    assert settings.batcher is False
    assert settings.max_batch == 1000
    assert settings.intra_op_threads == 1
    assert settings.metrics_dir == Path("var/metrics")
    assert settings.multiproc_dir is None


def test_every_variable_is_read() -> None:
    """Each SCANOPT_* variable lands in its field, parsed to its type."""
    env = {
        "SCANOPT_HOST": "0.0.0.0",
        "SCANOPT_PORT": "9000",
        "SCANOPT_WORKERS": "3",
        "SCANOPT_ARTIFACTS": "/models",
        "SCANOPT_CORS_ORIGINS": "https://a.example, http://b.example:8080",
        "SCANOPT_ADMIN_TOKEN": "0123456789abcdef",
        "SCANOPT_STORE_DSN": "postgresql://x@y/z",
        "SCANOPT_BATCHER": "on",
        "SCANOPT_BATCH_MAX_SIZE": "16",
        "SCANOPT_BATCH_MAX_WAIT_US": "250",
        "SCANOPT_CACHE_SIZE": "0",
        "SCANOPT_MAX_BATCH": "500",
        "SCANOPT_MAX_BODY_BYTES": "65536",
        "SCANOPT_LOG_LEVEL": "debug",
        "SCANOPT_LOG_FLUSH_S": "0",
        "SCANOPT_INTRA_OP_THREADS": "2",
        "SCANOPT_LOOP": "AsyncIO",
        "SCANOPT_METRICS_DIR": "/tmp/m",
        "SCANOPT_RELOAD_POLL_S": "0.5",
        "PROMETHEUS_MULTIPROC_DIR": "/tmp/m",
    }
    s = Settings.from_env(env)
    assert (s.host, s.port, s.workers) == ("0.0.0.0", 9000, 3)
    assert s.artifacts == Path("/models")
    assert s.cors_origins == ("https://a.example", "http://b.example:8080")
    assert s.admin_token == "0123456789abcdef"
    assert s.store_dsn == "postgresql://x@y/z"
    assert (s.batcher, s.batch_max_size, s.batch_max_wait_us) == (True, 16, 250)
    assert (s.cache_size, s.max_batch, s.max_body_bytes) == (0, 500, 65536)
    assert (s.log_level, s.log_flush_s, s.intra_op_threads) == ("DEBUG", 0.0, 2)
    assert s.loop == "asyncio"
    assert s.metrics_dir == Path("/tmp/m")
    assert s.reload_poll_s == 0.5
    assert s.multiproc_dir == Path("/tmp/m")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SCANOPT_PORT", "http", "an integer from 1 to 65535"),
        ("SCANOPT_PORT", "70000", "an integer from 1 to 65535"),
        ("SCANOPT_WORKERS", "0", "an integer from 1 to 256"),
        ("SCANOPT_BATCHER", "maybe", "on/off"),
        ("SCANOPT_LOG_LEVEL", "loud", "one of DEBUG, INFO, WARNING, ERROR"),
        ("SCANOPT_LOOP", "trio", "uvloop or asyncio"),
        ("SCANOPT_CORS_ORIGINS", "example.com", "http(s)://host origins"),
        ("SCANOPT_RELOAD_POLL_S", "nan", "a number from 0 to 3600"),
        ("SCANOPT_HOST", "", "a non-empty value"),
        ("SCANOPT_MAX_BODY_BYTES", "10", "an integer from 1024"),
        ("SCANOPT_SHADOW_VERSION", "../current", "a version folder name under artifacts/models"),
        ("SCANOPT_SHADOW_SHARE", "1.5", "a number from 0 to 1"),
        ("SCANOPT_SHADOW_QUEUE", "0", "an integer from 1 to 1000000"),
    ],
)
def test_bad_value_names_variable_value_and_expectation(
    variable: str, value: str, expected: str
) -> None:
    """A malformed value raises one message naming the variable, the value and the rule."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}={value!r}")
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SCANOPT_ADMIN_TOKEN", "short-secret", "at least 16 characters"),
        ("SCANOPT_STORE_DSN", "mysql://root:hunter2@db/scan", "got scheme 'mysql'"),
        ("SCANOPT_STORE_DSN", "hunter2", "got no scheme"),
        ("SCANOPT_STORE_DSN", "sqlite://", "naming a file"),
    ],
)
def test_secrets_are_named_never_printed(variable: str, value: str, expected: str) -> None:
    """A bad admin token or store DSN names the variable and the rule, never the value."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}=(value not shown): expected")
    assert expected in message
    assert "short-secret" not in message
    assert "hunter2" not in message


def test_batch_size_above_max_batch_is_refused() -> None:
    """The batcher cannot form batches larger than a batch request may be."""
    with pytest.raises(SettingsError, match="SCANOPT_BATCH_MAX_SIZE=2000"):
        Settings.from_env({"SCANOPT_BATCH_MAX_SIZE": "2000"})


def test_empty_admin_token_switches_admin_off() -> None:
    """SCANOPT_ADMIN_TOKEN set but empty means no admin endpoints, not an empty token."""
    assert Settings.from_env({"SCANOPT_ADMIN_TOKEN": ""}).admin_token is None


def test_shadow_settings() -> None:
    """No shadow by default (and for an empty variable); a version and share when set."""
    assert Settings.from_env({}).shadow_version is None
    assert Settings.from_env({"SCANOPT_SHADOW_VERSION": ""}).shadow_version is None
    s = Settings.from_env({"SCANOPT_SHADOW_VERSION": "v-2", "SCANOPT_SHADOW_SHARE": "0.25"})
    assert (s.shadow_version, s.shadow_share, s.shadow_queue) == ("v-2", 0.25, 10_000)


def test_unknown_variables_are_reported() -> None:
    """Typos among SCANOPT_* names are found; test-only variables are not typos."""
    env = {"SCANOPT_WORKRS": "2", "SCANOPT_PORT": "1", "SCANOPT_TEST_PG_DSN": "x", "HOME": "/"}
    assert Settings.unknown_variables(env) == ["SCANOPT_WORKRS"]


def test_every_setting_declares_its_meaning_and_its_rule() -> None:
    """Each SCANOPT_* field carries a description, and a bad value's message comes from it."""
    for field in msgspec.inspect.type_info(Settings).fields:  # type: ignore[attr-defined]
        if field.name == "multiproc_dir":
            continue
        info = field.type
        if isinstance(info, msgspec.inspect.UnionType):
            info = info.types[0]
        assert isinstance(info, msgspec.inspect.Metadata), field.name
        assert (info.extra_json_schema or {}).get("description"), field.name


def test_monitoring_is_on_by_default_and_reads_switch_words() -> None:
    """SCANOPT_MONITORING is on unless switched off with a switch word."""
    assert Settings.from_env({}).monitoring is True
    assert Settings.from_env({"SCANOPT_MONITORING": "off"}).monitoring is False
    with pytest.raises(SettingsError, match="SCANOPT_MONITORING='maybe': expected on/off"):
        Settings.from_env({"SCANOPT_MONITORING": "maybe"})
