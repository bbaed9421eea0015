"""Every id the API takes, in a body, a path or a query, refuses control characters and
Unicode bidirectional controls with a 400 naming the field (one table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from litestar.testing import TestClient

from tests.server.conftest import SCAN, TOKEN

Client = TestClient[Any]
# NUL, other C0 controls, DEL, a C1 control, the bidirectional embeddings and overrides
# U+202A-U+202E and the isolates U+2066-U+2069.
REFUSED = (
    "\x00",
    "\x01",
    "\x09",
    "\x1b",
    "\x7f",
    "\x85",
    *(chr(c) for c in range(0x202A, 0x202F)),
    *(chr(c) for c in range(0x2066, 0x206A)),
)
EVENT = {
    "type": "scan_started",
    "event_id": "e-1",
    "user_id": "u-1",
    "session_id": "s-1",
    "timestamp": SCAN["timestamp"],
    "prediction_id": "p-1",
}
FEEDBACK = {"prediction_id": "p-1", "satisfaction": 4, "usefulness": 4, "user_id": "u-1"}
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def _post(path: str, body: Callable[[str], dict[str, Any]]) -> Callable[[Client, str], Any]:
    return lambda client, bad: client.post(path, json=body(bad))


def _get(url: Callable[[str], str]) -> Callable[[Client, str], Any]:
    return lambda client, bad: client.get(url(quote(bad, safe="")))


# (where, request sending the bad id, the field the 400 must name)
CASES: list[tuple[str, Callable[[Client, str], Any], str]] = [
    *(
        (f"predict {f}", _post("/v1/predict", lambda b, f=f: {**SCAN, f: f"a{b}b"}), f)
        for f in ("user_id", "session_id")
    ),
    (
        "batch user_id",
        _post("/v1/predict/batch", lambda b: {"scans": [SCAN, {**SCAN, "user_id": b}]}),
        "scans[1].user_id",
    ),
    (
        "recommend session_id",
        _post("/v1/recommend", lambda b: {"scan": {**SCAN, "session_id": f"{b}x"}}),
        "scan.session_id",
    ),
    *(
        (f"event {f}", _post("/v1/events", lambda b, f=f: {**EVENT, f: f"x{b}"}), f)
        for f in ("event_id", "user_id", "session_id", "prediction_id", "experiment", "arm")
    ),
    *(
        (f"feedback {f}", _post("/v1/feedback", lambda b, f=f: {**FEEDBACK, f: f"x{b}"}), f)
        for f in ("prediction_id", "user_id", "session_id")
    ),
    ("experiment name", _get(lambda b: f"/v1/experiments/ml{b}scanning"), "name"),
    ("report name", _get(lambda b: f"/v1/experiments/ml{b}/report.html"), "name"),
    (
        "admin experiment name",
        lambda client, bad: client.put(
            f"/v1/admin/experiments/ml{quote(bad, safe='')}",
            json={"kill_switch": False},
            headers=ADMIN,
        ),
        "name",
    ),
    ("accuracy version", _get(lambda b: f"/v1/monitoring/accuracy?version=v{b}"), "version"),
    ("drift version", _get(lambda b: f"/v1/monitoring/drift?version=v{b}"), "version"),
    ("importance version", _get(lambda b: f"/v1/monitoring/importance?version={b}"), "version"),
    ("V2 model name", _get(lambda b: f"/v2/models/scan{b}opt"), "name"),
    (
        "V2 model version",
        _get(lambda b: f"/v2/models/scanopt/versions/v{b}/ready"),
        "model_version",
    ),
]


@pytest.mark.parametrize(
    ("request_with", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_an_id_with_a_control_or_bidi_character_is_a_400_naming_it(
    client: Client, request_with: Callable[[Client, str], Any], field: str
) -> None:
    """Each refused character, alone or inside an id, is a 400 whose `field` is the id."""
    wrong: list[str] = []
    for bad in REFUSED:
        response = request_with(client, bad)
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        if response.status_code != 400 or body.get("field") != field:
            wrong.append(f"U+{ord(bad):04X}: {response.status_code} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_printable_ids_with_markup_and_non_latin_text_are_accepted(client: Client) -> None:
    """The rule refuses controls, nothing else: quotes, markup, emoji and RTL letters pass."""
    for user in ('<b>"o\'neil"</b>', "用户-7", "😀", "מִשְׁתַּמֵּשׁ"):
        assert client.post("/v1/predict", json={**SCAN, "user_id": user}).status_code == 200
