"""Schemathesis hooks: schema-valid cases also keep the rules JSON Schema cannot state.

The OpenAPI document states each field's type, range, pattern and allowed values. A few
rules relate fields to each other or to the server's state, which JSON Schema has no
words for; the field and operation descriptions state them instead:

- a scan: min_price < max_price, rsi_min < rsi_max, a timestamp from 2000-01-01 to 1 h
  after the server's clock; a recommendation: min_results < max_results;
- an event: its experiment and arm exist (the server starts with one experiment,
  ml_scanning, with arms control and treatment), the same timestamp rule, and for
  scan_completed desired_min <= desired_max and suggestion_applied only if shown;
- events and feedback: prediction_id is one the server issued (HMAC-signed: a generated
  string is an honest 404, so a valid case carries a real one, from /v1/predict);
- GET /v1/analytics/usage: since < until (until defaults to now);
- PUT /v1/admin/experiments/{name}: at least one change, weights naming every arm and
  summing to 1, and force to lower the coverage of a running experiment;
- V2 infer: the model's signature (GET /v2/models/scanopt): one FP32 input `features`
  of shape [n, 13] with n*13 values, each in its feature's range, and known outputs;
- V2 paths: a random model name or version is an honest 404, so three valid cases in
  four name the model served (scanopt) and its version, for the answers behind them;
- JSON Schema counts 1.0 as an integer; the server's decoder (msgspec) reads a JSON
  float literal as a float and refuses it for an integer field, as typed decoders do.

`keep_rules` (a `map_case` hook) rewrites a *positive* case so that it keeps these rules,
which leaves "valid data is accepted" (positive_data_acceptance) checking everything else:
any other refusal of a schema-valid case is still a failure. Negative cases are left as
generated: each breaks the schema, so it must be refused whatever else it breaks. The
rules themselves are tested against the server in tests/server (each refusal named).

Importing the module registers the hook for every schema: `just fuzz` names it in
SCHEMATHESIS_HOOKS, the CI fuzz test imports it.
"""

from __future__ import annotations

import itertools
import json
import math
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec
import schemathesis
from schemathesis.generation.modes import GenerationMode

from server.domain.artifact import MODEL_INPUT, MODEL_OUTPUTS
from server.domain.features import FEATURE_SPEC, N_FEATURES
from server.domain.scan import EARLIEST_TIMESTAMP
from server.experiments.config import CONTROL, DEFAULT_EXPERIMENT, TREATMENT
from server.routes.v2 import MODEL_NAME

__all__ = ["VALID_SCAN", "keep_rules"]

VALID_SCAN: Final = {
    "user_id": "fuzz-user",
    "session_id": "fuzz-session",
    "universe": "sp500",
    "strategy": "momentum",
    "timeframe": "5m",
    "lookback_bars": 50,
    "min_price": 5.0,
    "max_price": 500.0,
    "min_avg_volume": 100000.0,
    "min_market_cap_musd": 300.0,
    "min_abs_change_pct": 1.0,
    "min_relative_volume": 1.0,
    "rsi_min": 30.0,
    "rsi_max": 70.0,
    "n_extra_filters": 0,
    "volatility_index": 18.0,
}
_ARMS: Final = (CONTROL, TREATMENT)
_PRICE_MAX: Final = 1_000_000.0
_RSI_MAX: Final = 100.0
_RESULTS_MAX: Final = 8_000
_LARGEST_EXACT: Final = 2**53  # floats beyond are not exact integers anyway
_MIDDLES: Final = [
    (f.min if f.min is not None else 0.0) / 2 + (f.max if f.max is not None else 1.0) / 2
    for f in FEATURE_SPEC
]
_ids: Final = itertools.count()


def keep_rules(context: Any, case: Any) -> Any:
    """The `map_case` hook: a positive case rewritten to keep the module's rules."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return case
    path, body = case.operation.path, case.body
    if isinstance(body, dict):
        body = _integral(body)
        if path == "/v1/predict":
            _scan(body)
        elif path == "/v1/predict/batch":
            for scan in body.get("scans") or []:
                _scan(scan)
        elif path == "/v1/recommend":
            _scan(body.get("scan"))
            _ordered(
                body, "min_results", "max_results", _RESULTS_MAX, strict=True, defaults=(5, 100)
            )
        elif path == "/v1/events":
            _event(body, case)
        elif path == "/v1/feedback":
            body["prediction_id"] = _prediction_id(case)
        elif path == "/v1/admin/experiments/{name}":
            _update(body)
        elif path.endswith("/infer"):
            _infer(body)
        case.body = body
    if path == "/v1/analytics/usage" and isinstance(case.query, dict):
        _usage(case.query)
    if path.startswith("/v2/models/") and isinstance(case.path_parameters, dict):
        _served(case)
    return case


def _integral(value: Any) -> Any:
    """Integral floats as ints, all through a JSON value (see the module docstring)."""
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < _LARGEST_EXACT:
        return int(value)
    return value


def _ordered(
    body: Any,
    low: str,
    high: str,
    top: float,
    *,
    strict: bool,
    defaults: tuple[Any, Any] = (None, None),
) -> None:
    """Make body[low] < body[high] (or <=), both within [0, top]; a field left out
    counts with its default (None: no rule)."""
    if not isinstance(body, dict):
        return
    a, b = body.get(low, defaults[0]), body.get(high, defaults[1])
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return
    if a < b or (a == b and not strict):
        return
    a, b = min(a, b), max(a, b)
    if strict and a == b:
        if b < top:
            b = min(top, b + 1)
        else:
            a = b - 1
    body[low], body[high] = a, b


def _timestamp(body: dict[str, Any], key: str) -> None:
    """A timestamp the server accepts: from 2000-01-01 to now (the rule allows 1 h more)."""
    raw = body.get(key)
    if not isinstance(raw, str):
        return
    now = datetime.now(UTC)
    try:
        moment = msgspec.convert(raw, datetime)
    except msgspec.ValidationError:
        return
    if moment.tzinfo is None or not EARLIEST_TIMESTAMP <= moment <= now:
        body[key] = now.isoformat()


def _scan(scan: Any) -> None:
    if not isinstance(scan, dict):
        return
    _ordered(scan, "min_price", "max_price", _PRICE_MAX, strict=True)
    _ordered(scan, "rsi_min", "rsi_max", _RSI_MAX, strict=True)
    _timestamp(scan, "timestamp")


def _event(body: dict[str, Any], case: Any) -> None:
    body["experiment"] = DEFAULT_EXPERIMENT
    if body.get("arm") not in _ARMS:
        body["arm"] = None
    _timestamp(body, "timestamp")
    if body.get("prediction_id") is not None:
        body["prediction_id"] = _prediction_id(case)
    if body.get("type") == "scan_completed":
        _ordered(body, "desired_min", "desired_max", _RESULTS_MAX, strict=False)
        if body.get("suggestion_applied"):
            body["suggestion_shown"] = True


def _update(body: dict[str, Any]) -> None:
    weights = body.get("weights")
    if weights is not None and (
        set(weights) != set(_ARMS) or not math.isclose(sum(weights.values()), 1.0)
    ):
        body["weights"] = {CONTROL: 0.5, TREATMENT: 0.5}
    if body.get("coverage") is not None:
        body["force"] = True
    if all(body.get(k) is None for k in ("coverage", "weights", "kill_switch")):
        body["kill_switch"] = False


def _infer(body: dict[str, Any]) -> None:
    rows = 1 + next(_ids) % 3
    body["inputs"] = [
        {
            "name": MODEL_INPUT,
            "datatype": "FP32",
            "shape": [rows, N_FEATURES],
            "data": _MIDDLES * rows,
        }
    ]
    body.pop("parameters", None)  # protocol flags: binary answers are not JSON
    outputs = body.get("outputs")
    if isinstance(outputs, list):
        kept = [{"name": o["name"]} for o in outputs if o.get("name") in MODEL_OUTPUTS]
        body["outputs"] = kept or None


def _usage(query: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    since, until = _instant(query.get("since")), _instant(query.get("until"))
    end = until or now
    if since is not None and since >= end:
        if until is None:
            query["until"] = (since + timedelta(days=1)).isoformat()
        else:
            query["since"], query["until"] = query["until"], query["since"]
            if since == until:
                query.pop("since")


def _instant(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        return msgspec.convert(raw, datetime)
    except msgspec.ValidationError:
        return None


_SERVED: dict[str, str] = {}  # the served model's name and version, asked once


def _served(case: Any) -> None:
    if next(_ids) % 4 == 0:
        return
    if not _SERVED:
        url = case.operation.schema.get_base_url() + f"/v2/models/{MODEL_NAME}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            _SERVED.update(name=MODEL_NAME, model_version=json.load(answer)["versions"][0])
    for key in ("name", "model_version"):
        if key in case.path_parameters:
            case.path_parameters[key] = _SERVED[key]


def _prediction_id(case: Any) -> str:
    """A fresh prediction_id from the server under test (one /v1/predict call)."""
    url = case.operation.schema.get_base_url() + "/v1/predict"
    scan = {**VALID_SCAN, "user_id": f"fuzz-{next(_ids)}"}
    request = urllib.request.Request(
        url, data=json.dumps(scan).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.load(answer)["prediction_id"])


schemathesis.hook("map_case")(keep_rules)
