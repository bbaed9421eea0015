"""The server's errors: each names the bad value and what was expected.

Domain errors know nothing about HTTP; `server.routes.errors` maps them to status codes
in one place. The tree::

    ScanoptError
    ├── SettingsError        a SCANOPT_* variable is malformed; start-up stops
    ├── InputError           a request body or tensor is malformed (400)
    │   ├── BodyTooLargeError    the body is over SCANOPT_MAX_BODY_BYTES (413)
    │   └── UnsupportedMediaTypeError    a body that is not JSON on a JSON route (415)
    ├── ArtifactError        a model version cannot be served: missing, corrupt, wrong spec (409)
    ├── NotReadyError        no model is loaded yet (503)
    ├── ModelNotFoundError   a V2 model name or version this server does not serve (404)
    ├── AuthError
    │   ├── MissingTokenError    no bearer token on an admin call (401)
    │   └── BadTokenError        a wrong bearer token (403)
    └── ScanoptStateError    the store and what it keeps (experiments, events, feedback)
        ├── StoreUnavailableError    the store cannot be reached; nothing acknowledged (503)
        ├── NotFoundError            an unknown experiment or prediction_id (404)
        ├── ConflictError            an event_id or feedback reused with another body (409)
        └── InvalidInputError        a broken rule: weights, unknown arm or experiment (422)
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "AuthError",
    "BadTokenError",
    "BodyTooLargeError",
    "ConflictError",
    "ExperimentNotFoundError",
    "InputError",
    "InvalidInputError",
    "MissingTokenError",
    "ModelNotFoundError",
    "NotFoundError",
    "NotReadyError",
    "ScanoptError",
    "ScanoptStateError",
    "SettingsError",
    "StoreUnavailableError",
    "UnknownPredictionError",
    "UnsupportedMediaTypeError",
]


class ScanoptError(Exception):
    """Base of every error the server raises on purpose.

    `kind` is a short stable code for clients and the errors metric; `field` names the
    offending input (a JSON path such as ``scans[3].min_price``) when there is one.
    """

    kind = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class SettingsError(ScanoptError):
    """A SCANOPT_* environment variable does not parse or is out of range."""

    kind = "bad_setting"


class InputError(ScanoptError):
    """A request body, parameter or tensor is malformed."""

    kind = "bad_input"


class BodyTooLargeError(InputError):
    """The request body is larger than the configured limit."""

    kind = "body_too_large"


class UnsupportedMediaTypeError(InputError):
    """A JSON route was sent a body of another (or no) content type."""

    kind = "unsupported_media_type"


class ArtifactError(ScanoptError):
    """A model version cannot be served (missing file, checksum, feature spec, graph).

    `check` names the verification step that refused it (server.inference.artifacts.CHECKS),
    so `just validate` can show it beside the reason the server logs.
    """

    kind = "bad_artifact"

    def __init__(self, message: str, *, check: str = "version") -> None:
        super().__init__(message)
        self.check = check


class NotReadyError(ScanoptError):
    """No model version is loaded and warmed in this worker yet."""

    kind = "not_ready"


class ModelNotFoundError(ScanoptError):
    """A model name or version that this server does not serve."""

    kind = "model_not_found"


class AuthError(ScanoptError):
    """An admin call without the right bearer token."""

    kind = "unauthorized"


class MissingTokenError(AuthError):
    """No `Authorization: Bearer <token>` header."""

    kind = "unauthorized"


class BadTokenError(AuthError):
    """A bearer token that is not SCANOPT_ADMIN_TOKEN."""

    kind = "forbidden"


class ScanoptStateError(ScanoptError):
    """Base of every error raised by the store, experiments, events and feedback."""


class StoreUnavailableError(ScanoptStateError):
    """The store cannot be reached (or stayed locked); nothing was acknowledged.

    Nothing was written either, unless the connection to PostgreSQL broke during the
    write's COMMIT, when the message says the write may have been stored."""

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
