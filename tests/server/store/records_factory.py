"""Small builders of store records for the tests (valid by default, override what matters)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from server.domain.scan import Scan, Strategy, Timeframe, Universe
from server.store.records import (
    Feedback,
    FirstResult,
    PredictionRecord,
    ScanCompleted,
    ScanStarted,
)

__all__ = ["T0", "completed", "feedback", "first_result", "prediction", "scan", "started"]

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def scan(user: str = "u1", session: str = "s1") -> Scan:
    return Scan(
        user_id=user,
        session_id=session,
        universe=Universe.SP500,
        strategy=Strategy.MOMENTUM,
        timeframe=Timeframe.M5,
        lookback_bars=50,
        min_price=5.0,
        max_price=500.0,
        min_avg_volume=5e5,
        min_market_cap_musd=1000.0,
        min_abs_change_pct=2.0,
        min_relative_volume=1.5,
        rsi_min=30.0,
        rsi_max=70.0,
        n_extra_filters=2,
        volatility_index=18.0,
        timestamp=T0,
    )


def prediction(n: int = 0, **overrides: Any) -> PredictionRecord:
    values: dict[str, Any] = {
        "prediction_id": f"p{n:04d}",
        "created_at": T0 + timedelta(seconds=n),
        "user_id": f"u{n % 7}",
        "session_id": f"s{n % 11}",
        "experiment": "ml_scanning",
        "arm": "treatment",
        "ml_enabled": True,
        "endpoint": "predict",
        "model_version": "v1",
        "scan": scan(f"u{n % 7}", f"s{n % 11}"),
        "result_count": 12.5,
        "result_count_lo": 3.0,
        "result_count_hi": 40.0,
        "duration_s": 1.5,
        "duration_s_lo": 0.5,
        "duration_s_hi": 3.0,
        "p_empty": 0.1,
    }
    values.update(overrides)
    return PredictionRecord(**values)


def _base(event_id: str, user: str, session: str, at: datetime, **kw: Any) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user, "session_id": session, "timestamp": at, **kw}


def started(
    event_id: str, user: str = "u1", session: str = "s1", at: datetime = T0, **kw: Any
) -> ScanStarted:
    return ScanStarted(**_base(event_id, user, session, at, **kw))


def first_result(
    event_id: str, user: str = "u1", session: str = "s1", at: datetime = T0, **kw: Any
) -> FirstResult:
    return FirstResult(**_base(event_id, user, session, at, **kw))


def completed(
    event_id: str,
    user: str = "u1",
    session: str = "s1",
    at: datetime = T0,
    result_count: int = 10,
    **kw: Any,
) -> ScanCompleted:
    kw.setdefault("duration_s", 2.0)
    return ScanCompleted(**_base(event_id, user, session, at, result_count=result_count, **kw))


def feedback(prediction_id: str = "p0001", **kw: Any) -> Feedback:
    kw.setdefault("satisfaction", 4)
    kw.setdefault("usefulness", 5)
    return Feedback(prediction_id=prediction_id, **kw)
