"""The experiment CLI: show and change configs in the store, with the API's rules."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from server.experiment_cli import main, parse_weights
from server.experiments.config import ExperimentConfig
from server.store import open_store


def _stored(dsn: str) -> ExperimentConfig:
    async def read() -> ExperimentConfig:
        store = await open_store(dsn, pool_size=4)
        try:
            return await store.get_experiment("ml_scanning")
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.fixture
def dsn(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def test_show_prints_the_default_as_json(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`show --json` prints what GET /v1/experiments serves, seeded on first use."""
    assert main(["--dsn", dsn, "show", "--json"]) == 0
    (config,) = json.loads(capsys.readouterr().out)
    assert (config["name"], config["coverage"], config["kill_switch"]) == (
        "ml_scanning",
        1.0,
        False,
    )


def test_set_changes_coverage_and_weights(dsn: str) -> None:
    """`set` writes coverage and weights to the store."""
    args = [
        "--dsn",
        dsn,
        "set",
        "ml_scanning",
        "--coverage",
        "0.1",
        "--weights",
        "control=0.2,treatment=0.8",
        "--force",
    ]
    assert main(args) == 0
    config = _stored(dsn)
    assert config.coverage == 0.1
    assert [a.weight for a in config.arms] == [0.2, 0.8]


def test_kill_and_resume_flip_the_switch(dsn: str) -> None:
    """`kill` and `resume` (default experiment ml_scanning) flip the kill switch."""
    assert main(["--dsn", dsn, "kill"]) == 0
    assert _stored(dsn).kill_switch is True
    assert main(["--dsn", dsn, "resume"]) == 0
    assert _stored(dsn).kill_switch is False


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (["set", "ml_scanning", "--coverage", "1.5"], 2, "<= 1.0"),
        (["set", "ml_scanning", "--weights", "control=0.6,treatment=0.6"], 2, "sum to 1"),
        (["set", "ml_scanning"], 2, "nothing to change"),
        (["set", "ml_scanning", "--coverage", "0.5"], 2, "--force"),
        (["show", "nope"], 1, "unknown experiment 'nope'"),
    ],
)
def test_refusals_exit_non_zero_with_the_reason(
    dsn: str, capsys: pytest.CaptureFixture[str], args: list[str], status: int, words: str
) -> None:
    """Bad values exit 2, unknown experiments 1, each with the reason on stderr."""
    assert main(["--dsn", dsn, *args]) == status
    assert words in capsys.readouterr().err
    assert _stored(dsn).version == 1


@pytest.mark.parametrize("text", ["control", "=0.5", "control=half", ""])
def test_weights_syntax_errors_name_the_part(text: str) -> None:
    """A malformed --weights value says what was expected."""
    with pytest.raises(ValueError, match="expected arm=weight"):
        parse_weights(text)
