"""The ceiling app: a constant answer of a prediction's shape, whatever the body."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from litestar.testing import TestClient

from bench.ceiling import CONSTANT_ANSWER, create_app
from bench.plan import RunConfig, server_spec
from server.settings import Settings


def test_predict_answers_the_constant_whatever_the_body() -> None:
    """Any body, even not JSON, gets 200 and the same bytes."""
    with TestClient(create_app()) as client:
        for body in (b'{"universe":"sp500"}', b"not json"):
            answer = client.post("/v1/predict", content=body)
            assert answer.status_code == 200
            assert answer.content == CONSTANT_ANSWER


def test_constant_has_the_shape_of_a_prediction() -> None:
    """The constant decodes to a prediction-like object, so wire sizes are comparable."""
    answer = msgspec.json.decode(CONSTANT_ANSWER)
    assert set(answer) >= {"result_count", "duration_s", "p_empty", "confidence"}


def test_ready_is_always_200() -> None:
    """There is nothing to load, so the ceiling is ready at once."""
    with TestClient(create_app()) as client:
        assert client.get("/health/ready").status_code == 200


@pytest.mark.parametrize(("setting", "expected"), [(None, "uvloop"), ("asyncio", "asyncio")])
def test_the_ceiling_runs_on_the_loop_scanopt_runs_on(
    tmp_path: Path, setting: str | None, expected: str
) -> None:
    """The ratio compares request paths: the constant endpoint gets scanopt's event loop."""
    env = {} if setting is None else {"SCANOPT_LOOP": setting}
    run = RunConfig(name="ceiling", server="ceiling", workers=1, env=env)
    spec = server_spec(run, 8000, artifacts=tmp_path, workdir=tmp_path, baseline_model=None)
    assert spec.argv[spec.argv.index("--loop") + 1] == expected
    assert Settings.from_env(env).loop == expected
