"""The gated answers share one decision base and still encode byte for byte as before."""

from __future__ import annotations

import msgspec

from server.schemas import GatedAnswer, Interval, Outcome, PredictAnswer, RecommendAnswer

COUNT = Interval(predicted=12.5, lower=3.0, upper=40.0)
DURATION = Interval(predicted=1.5, lower=0.5, upper=4.0)
OUTCOME = Outcome(result_count=COUNT, duration_s=DURATION, p_empty=0.125, confidence=0.75)
DECISION_FIELDS = ("prediction_id", "arm", "ml_enabled", "model_version")


def test_both_answers_start_with_the_decision_fields() -> None:
    """The four decision fields are declared once and come first, in the same order."""
    assert tuple(f.name for f in msgspec.structs.fields(GatedAnswer)) == DECISION_FIELDS
    for answer in (PredictAnswer, RecommendAnswer):
        assert issubclass(answer, GatedAnswer)
        assert tuple(f.name for f in msgspec.structs.fields(answer))[:4] == DECISION_FIELDS


def test_predict_answers_encode_as_before() -> None:
    """With and without ML: the bytes the answer had before the base was factored out."""
    with_ml = PredictAnswer(
        prediction_id="p-1",
        arm="treatment",
        ml_enabled=True,
        model_version="v1",
        result_count=COUNT,
        duration_s=DURATION,
        p_empty=0.125,
        confidence=0.75,
    )
    assert msgspec.json.encode(with_ml) == (
        b'{"prediction_id":"p-1","arm":"treatment","ml_enabled":true,"model_version":"v1",'
        b'"result_count":{"predicted":12.5,"lower":3.0,"upper":40.0},'
        b'"duration_s":{"predicted":1.5,"lower":0.5,"upper":4.0},'
        b'"p_empty":0.125,"confidence":0.75}'
    )
    without = PredictAnswer(prediction_id="p-2", arm=None, ml_enabled=False)
    assert msgspec.json.encode(without) == b'{"prediction_id":"p-2","arm":null,"ml_enabled":false}'


def test_recommend_answers_encode_as_before() -> None:
    """With and without ML: the bytes the answer had before the base was factored out."""
    with_ml = RecommendAnswer(
        prediction_id="p-3",
        arm="control",
        ml_enabled=True,
        model_version="v1",
        current=OUTCOME,
        current_in_range=False,
        current_score=2.5,
        suggestions=[],
        candidates_scored=7,
        unreachable=True,
        note="n",
    )
    assert msgspec.json.encode(with_ml) == (
        b'{"prediction_id":"p-3","arm":"control","ml_enabled":true,"model_version":"v1",'
        b'"current":{"result_count":{"predicted":12.5,"lower":3.0,"upper":40.0},'
        b'"duration_s":{"predicted":1.5,"lower":0.5,"upper":4.0},"p_empty":0.125,'
        b'"confidence":0.75},"current_in_range":false,"current_score":2.5,"suggestions":[],'
        b'"candidates_scored":7,"unreachable":true,"note":"n"}'
    )
    without = RecommendAnswer(prediction_id="p-4", arm="control", ml_enabled=False)
    assert msgspec.json.encode(without) == (
        b'{"prediction_id":"p-4","arm":"control","ml_enabled":false}'
    )
