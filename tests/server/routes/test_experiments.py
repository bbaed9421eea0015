"""GET /v1/experiments/{name} and PUT /v1/admin/experiments/{name}: config and its rules."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from server.app import create_app
from server.store import open_store
from tests.server.conftest import SCAN, make_settings
from tests.server.conftest import TOKEN as CONFTEST_TOKEN
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
    body = {"coverage": 0.1, "weights": {"control": 0.2, "treatment": 0.8}, "force": True}
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


# --- through the real app: the gate on /v1/predict, /v1/predict/batch, /v1/recommend ----

TREATMENT_USER, CONTROL_USER = "u-1", "u-2"  # what ml_scanning's hash gives them
USERS = ["u-1", "u-2", "u-3"]


def _scan(user: str) -> dict[str, Any]:
    return {**SCAN, "user_id": user}


def _exposures(client: TestClient[Any]) -> dict[str, str]:
    runtime = client.app.state.worker
    assert client.blocking_portal is not None
    client.blocking_portal.call(runtime.log.flush)
    rows = client.blocking_portal.call(runtime.store.list_exposures, "ml_scanning")
    return {e.user_id: e.arm for e in rows}


def test_control_gets_no_ml_content_but_is_logged(client_for: Any) -> None:
    """A control user's answer has only the id and decision; the exposure is still logged."""
    client = client_for()
    body = client.post("/v1/predict", json=_scan(CONTROL_USER)).json()
    assert body == {"prediction_id": body["prediction_id"], "arm": "control", "ml_enabled": False}
    treated = client.post("/v1/predict", json=_scan(TREATMENT_USER)).json()
    assert (treated["arm"], treated["ml_enabled"], "result_count" in treated) == (
        "treatment",
        True,
        True,
    )
    assert _exposures(client) == {CONTROL_USER: "control", TREATMENT_USER: "treatment"}


def test_kill_switch_turns_ml_off_without_errors(client_for: Any) -> None:
    """With the kill switch on, predict and recommend answer 200 without ML for everyone."""
    client = client_for()
    headers = {"Authorization": f"Bearer {CONFTEST_TOKEN}"}
    assert client.put(PATH, json={"kill_switch": True}, headers=headers).status_code == 200
    predicted = client.post("/v1/predict", json=_scan(TREATMENT_USER))
    assert predicted.status_code == 200
    assert set(predicted.json()) == {"prediction_id", "arm", "ml_enabled"}
    assert (predicted.json()["arm"], predicted.json()["ml_enabled"]) == (None, False)
    recommended = client.post("/v1/recommend", json={"scan": _scan(TREATMENT_USER)})
    assert recommended.status_code == 200
    assert recommended.json()["ml_enabled"] is False
    assert "suggestions" not in recommended.json()
    assert _exposures(client) == {}


def test_batch_gates_each_scan_for_its_own_user(client_for: Any) -> None:
    """In one batch, treatment scans get ML content and control scans do not."""
    client = client_for()
    scans = [_scan(TREATMENT_USER), _scan(CONTROL_USER), _scan(TREATMENT_USER)]
    answers = client.post("/v1/predict/batch", json={"scans": scans}).json()["predictions"]
    assert [a["ml_enabled"] for a in answers] == [True, False, True]
    assert ["result_count" in a for a in answers] == [True, False, True]


def test_recommend_carries_the_decision_and_an_id(client_for: Any) -> None:
    """A treatment user's recommendation has suggestions, the arm and a prediction id."""
    client = client_for()
    body = client.post("/v1/recommend", json={"scan": _scan(TREATMENT_USER)}).json()
    assert (body["arm"], body["ml_enabled"]) == ("treatment", True)
    assert len(body["prediction_id"]) == 40
    assert "suggestions" in body
    control = client.post("/v1/recommend", json={"scan": _scan(CONTROL_USER)}).json()
    assert set(control) == {"prediction_id", "arm", "ml_enabled"}


def test_outcomes_link_to_the_served_prediction(client_for: Any) -> None:
    """The id from /v1/predict is accepted by /v1/events and /v1/feedback, for both arms."""
    client = client_for()
    for user in (TREATMENT_USER, CONTROL_USER):
        answer = client.post("/v1/predict", json=_scan(user)).json()
        event = {
            "type": "scan_completed",
            "event_id": f"done-{user}",
            "user_id": user,
            "session_id": "s-1",
            "timestamp": SCAN["timestamp"],
            "prediction_id": answer["prediction_id"],
            "arm": answer["arm"],
            "result_count": 7,
            "duration_s": 2.0,
        }
        assert client.post("/v1/events", json=event).status_code == 201
        rating = {"prediction_id": answer["prediction_id"], "satisfaction": 5, "usefulness": 4}
        assert client.post("/v1/feedback", json=rating).status_code == 201


def test_gradual_rollout_only_adds_users(client_for: Any) -> None:
    """Raising coverage from 10% to 50% keeps every user who had an arm in that arm."""
    client = client_for()
    headers = {"Authorization": f"Bearer {CONFTEST_TOKEN}"}
    users = [f"user-{i}" for i in range(60)]

    def arms() -> dict[str, str | None]:
        scans = [_scan(u) for u in users]
        answers = client.post("/v1/predict/batch", json={"scans": scans}).json()["predictions"]
        return {u: a["arm"] for u, a in zip(users, answers, strict=True)}

    client.put(PATH, json={"coverage": 0.1, "force": True}, headers=headers)
    small = arms()
    client.put(PATH, json={"coverage": 0.5}, headers=headers)
    large = arms()
    assert (
        0 < sum(a is not None for a in small.values()) < sum(a is not None for a in large.values())
    )
    assert all(large[u] == arm for u, arm in small.items() if arm is not None)


def test_shutdown_flushes_the_prediction_log(artifacts: Any) -> None:
    """Predictions still buffered when a worker stops are written before it exits."""
    settings = make_settings(artifacts, prediction_log_flush_s=60.0)
    with TestClient(create_app(settings)) as client:
        ids = [client.post("/v1/predict", json=_scan(u)).json()["prediction_id"] for u in USERS]

    async def logged() -> list[str]:
        store = await open_store(settings.store_dsn, pool_size=4)
        try:
            found = [await store.get_prediction(i) for i in ids]
            return [p.user_id for p in found if p is not None]
        finally:
            await store.close()

    assert asyncio.run(logged()) == USERS


def test_lowering_coverage_needs_force(client: TestClient[Any]) -> None:
    """Lowering a running experiment's coverage is 422 saying what it does to the analysis,
    and nothing changes; with "force": true it goes through."""
    refused = client.put(PATH, json={"coverage": 0.5}, headers=AUTH)
    assert refused.status_code == 422
    body = refused.json()
    assert body["field"] == "coverage"
    assert "stay in the analysis" in body["error"]
    assert '"force": true' in body["error"]
    assert client.get("/v1/experiments/ml_scanning").json()["coverage"] == 1.0
    forced = client.put(PATH, json={"coverage": 0.5, "force": True}, headers=AUTH)
    assert (forced.status_code, forced.json()["coverage"]) == (200, 0.5)
    assert client.put(PATH, json={"coverage": 0.8}, headers=AUTH).status_code == 200  # raising
