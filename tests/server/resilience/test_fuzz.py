"""Schemathesis against a real server's own OpenAPI document: every operation, admin
ones with the token, valid and invalid inputs (a short run: `just fuzz` runs thousands).

Checked on every answer: no 5xx; the status code, content type, headers and body are the
documented ones (error answers included: each operation declares its errors with the
error body); invalid input is refused with a 4xx and valid input accepted. "Valid"
includes the rules JSON Schema cannot state (min_price < max_price, since < until, ...):
bench.fuzz_rules, imported here, rewrites valid cases to keep them, as for `just fuzz`.
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
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import bench.fuzz_rules  # noqa: F401 (registers the hook that keeps the cross-field rules)
from tests.server.conftest import TOKEN, Versions
from tests.server.granian_process import ServerProcess
from tests.server.resilience.processes import launch

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES_PER_OPERATION = 10  # per operation and mode (valid, invalid)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]


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


def test_every_operation_answers_as_documented(api_schema: Any) -> None:
    """No 5xx for any generated input; every answer as documented (status, content type,
    headers, body); invalid input gets a 4xx, valid input is accepted."""
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
                case.call_and_validate(headers=AUTH, checks=CHECKS)

            try:
                check()
            except Exception as exc:  # each operation's first failure, all listed at the end
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    print(f"fuzz: {len(operations)} operations, {cases} cases, {len(failures)} failing")
    assert cases >= 250
    assert failures == []
