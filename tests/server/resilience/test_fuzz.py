"""Schemathesis against a real server's own OpenAPI document: every operation, admin
ones with the token, valid and invalid inputs (a short run: `just fuzz` runs thousands).

Checked on every answer: no 5xx, and invalid input refused with a 4xx. Checked on every
successful answer: the body conforms to the documented schema. Error answers are not yet
checked against the document, because it does not declare the error bodies or all the
4xx codes (issue 10 adds them; `just fuzz` checks them and lists what fails meanwhile).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

from tests.server.conftest import TOKEN, Versions
from tests.server.granian_process import ServerProcess
from tests.server.resilience.processes import launch

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES_PER_OPERATION = 10  # per operation and mode (valid, invalid)


def successful_body_conforms(ctx: Any, response: Any, case: Any) -> bool | None:
    """response_schema_conformance, for 2xx answers only (see the module docstring)."""
    if response.status_code >= 400:
        return None
    return response_schema_conformance(ctx, response, case)


@pytest.fixture(scope="module")
def fuzzed_server(
    tmp_path_factory: pytest.TempPathFactory, built_versions: Versions
) -> Iterator[ServerProcess]:
    """One worker on a private copy of the test versions, admin routes on."""
    home = tmp_path_factory.mktemp("fuzz")
    artifacts = home / "artifacts"
    shutil.copytree(built_versions.root, artifacts)
    (artifacts / "current").write_text(built_versions.first + "\n")
    server = launch(home, artifacts, workers=1, admin_token=TOKEN, log_level="WARNING")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: ServerProcess) -> Any:
    return schemathesis.openapi.from_url(f"{fuzzed_server.url}/schema/openapi.json")


def test_every_operation_answers_without_5xx_and_rejects_invalid_input(api_schema: Any) -> None:
    """No 5xx for any generated input; invalid input gets a 4xx; 2xx bodies match the doc."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20, "the document should list every endpoint"
    cases = 0
    failures: list[str] = []
    for operation in operations:
        # Without a body or query parameters nothing can be invalid (any string is a valid
        # path segment), so hypothesis could only report that it found no invalid input.
        invalid_possible = bool(len(operation.body) or len(operation.query))
        modes = [GenerationMode.POSITIVE] + [GenerationMode.NEGATIVE] * invalid_possible
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=True,  # the same cases each run: a failure here reproduces
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def check(case: Any) -> None:
                nonlocal cases
                cases += 1
                case.call_and_validate(
                    headers=AUTH,
                    checks=[not_a_server_error, negative_data_rejection, successful_body_conforms],
                )

            try:
                check()
            except Exception as exc:  # each operation's first failure, all listed at the end
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    print(f"fuzz: {len(operations)} operations, {cases} cases, {len(failures)} failing")
    assert cases >= 250
    assert failures == []
