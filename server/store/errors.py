"""Errors of the store and of the resources it keeps; none of them knows about HTTP.

They extend the server's tree (server.errors.ScanoptError: a message naming the bad value
and what was expected, a stable `kind`, the offending `field`)::

    ScanoptStateError
    ├── StoreUnavailableError     the database cannot be reached or is locked too long
    ├── NotFoundError        a named thing does not exist
    │   ├── ExperimentNotFoundError
    │   └── UnknownPredictionError
    ├── ConflictError        the same key was sent before with a different body
    └── InvalidInputError    well-formed input that breaks a rule (weights not summing to 1, ...)

The web layer maps them once: 503, 404, 409 and 422.
"""

from __future__ import annotations

from server.errors import ScanoptError

__all__ = [
    "ConflictError",
    "ExperimentNotFoundError",
    "InvalidInputError",
    "NotFoundError",
    "ScanoptStateError",
    "StoreUnavailableError",
    "UnknownPredictionError",
]


class ScanoptStateError(ScanoptError):
    """Base of every error raised by the store, experiments, events and feedback."""


class StoreUnavailableError(ScanoptStateError):
    """The store cannot be reached (or stayed locked); nothing was written."""

    kind = "store_unavailable"


class NotFoundError(ScanoptStateError):
    """A named thing does not exist."""

    kind = "not_found"


class ExperimentNotFoundError(NotFoundError):
    """No experiment by this name."""

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        hint = f"; known experiments: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"unknown experiment {name!r}{hint}", field="name")
        self.name = name


class UnknownPredictionError(NotFoundError):
    """A prediction_id this service never issued."""

    def __init__(self, prediction_id: str) -> None:
        super().__init__(
            f"unknown prediction_id {prediction_id!r}: expected an id returned by "
            "/v1/predict, /v1/predict/batch or /v1/recommend of this service",
            field="prediction_id",
        )
        self.prediction_id = prediction_id


class ConflictError(ScanoptStateError):
    """The key (event_id, prediction_id of a feedback) was used before with another body."""

    kind = "conflict"


class InvalidInputError(ScanoptStateError):
    """Input that decoded fine but breaks a rule; the message says which and what is allowed."""

    kind = "invalid"
