"""GET /v1/experiments/{name} and PUT /v1/admin/experiments/{name}: config and its rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.server.routes.outcomes_app import TOKEN, outcomes_client
from tests.server.store.backends import pg_dsn, store_dsn

__all__ = ["pg_dsn", "store_dsn"]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PATH = "/v1/admin/experiments/ml_scanning"


@pytest.fixture
def client(store_dsn: str) -> Iterator[TestClient[Any]]:
    with outcomes_client(store_dsn) as (test_client, _):
        yield test_client


def test_default_experiment_is_served(client: TestClient[Any]) -> None:
    """ml_scanning exists from the first start: 50/50, full coverage, kill switch off."""
    response = client.get("/v1/experiments/ml_scanning")
    assert response.status_code == 200
    body = response.json()
    assert body["arms"] == [
        {"name": "control", "weight": 0.5},
        {"name": "treatment", "weight": 0.5},
    ]
    assert (body["coverage"], body["kill_switch"], body["version"]) == (1.0, False, 1)
    assert [e["name"] for e in client.get("/v1/experiments").json()] == ["ml_scanning"]


def test_unknown_experiment_is_404_naming_the_known(client: TestClient[Any]) -> None:
    """An unknown name answers 404 and lists the experiments that exist."""
    response = client.get("/v1/experiments/nope")
    assert response.status_code == 404
    assert "known experiments: ml_scanning" in response.json()["error"]


def test_kill_switch_flip_is_stored_and_served(client: TestClient[Any]) -> None:
    """PUT {"kill_switch": true} changes only that, bumps the version, and GET shows it."""
    response = client.put(PATH, json={"kill_switch": True}, headers=AUTH)
    assert response.status_code == 200
    assert (response.json()["kill_switch"], response.json()["version"]) == (True, 2)
    served = client.get("/v1/experiments/ml_scanning").json()
    assert (served["kill_switch"], served["coverage"]) == (True, 1.0)


def test_rollout_change_is_applied(client: TestClient[Any]) -> None:
    """Coverage and weights change together in one PUT."""
    body = {"coverage": 0.1, "weights": {"control": 0.2, "treatment": 0.8}}
    response = client.put(PATH, json=body, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["coverage"] == 0.1
    assert [a["weight"] for a in response.json()["arms"]] == [0.2, 0.8]


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"weights": {"control": 0.5, "treatment": 0.6}}, 422, "weights", "sum to 1"),
        ({"weights": {"control": 0.5, "bogus": 0.5}}, 422, "weights", "unknown arm(s) 'bogus'"),
        ({"weights": {"control": 1.0}}, 422, "weights", "miss arm(s) 'treatment'"),
        ({}, 422, None, "nothing to change"),
        ({"coverage": 1.5}, 400, "coverage", "<= 1.0"),
        ({"coverage": "all"}, 400, "coverage", "Expected `float | null`"),
        ({"salt": "new"}, 400, "salt", "unknown field"),
    ],
)
def test_invalid_changes_are_refused_precisely(
    client: TestClient[Any], body: dict[str, Any], status: int, field: str | None, words: str
) -> None:
    """Each broken rule answers its own 4xx naming the field, and nothing changes."""
    response = client.put(PATH, json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert response.json().get("field") == field
    assert words in response.json()["error"]
    assert client.get("/v1/experiments/ml_scanning").json()["version"] == 1


def test_malformed_json_is_400(client: TestClient[Any]) -> None:
    """A body that is not JSON says so."""
    response = client.put(PATH, content=b"{kill", headers=AUTH)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


def test_update_of_unknown_experiment_is_404(client: TestClient[Any]) -> None:
    """Changing an experiment that does not exist answers 404."""
    response = client.put("/v1/admin/experiments/nope", json={"coverage": 0.5}, headers=AUTH)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong-token-but-long-enough"}, 403)],
)
def test_admin_needs_the_bearer_token(
    client: TestClient[Any], headers: dict[str, str], status: int
) -> None:
    """No token is 401, a wrong token 403, and the config is untouched."""
    assert client.put(PATH, json={"kill_switch": True}, headers=headers).status_code == status
    assert client.get("/v1/experiments/ml_scanning").json()["kill_switch"] is False


def test_admin_is_not_routed_without_a_token(tmp_path: Any) -> None:
    """With no admin token configured, the PUT does not exist (404) but GET still works."""
    dsn = f"sqlite:///{tmp_path}/s.db"
    with outcomes_client(dsn, admin_token=None) as (client, _):
        assert client.put(PATH, json={"kill_switch": True}, headers=AUTH).status_code == 404
        assert client.get("/v1/experiments/ml_scanning").status_code == 200
