"""Prediction ids that the service can recognise without a database lookup.

An id is 24 hex characters of randomness followed by 16 hex characters of
a keyed BLAKE2b MAC of the randomness (BLAKE2b's own keyed mode, a third
of HMAC-SHA256's cost). The secret is created once per store (so every worker
and replica shares it) by `Store.secret(SECRET_NAME)`.

Why not look the id up: the prediction log is written in batches off the request path
and may be sampled, so a feedback or an outcome event can legitimately arrive for a
prediction that is not (or never will be) in the table. The tag tells "issued by this
service" apart from a typo or an invented id in about a microsecond.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from typing import Final

from server.errors import NotReadyError

__all__ = ["SECRET_NAME", "PredictionIds"]

SECRET_NAME: Final = "prediction_ids"  # noqa: S105 - the name of a secret, not one
_RANDOM_BYTES: Final = 12
_TAG_BYTES: Final = 8
_SHAPE: Final = re.compile(f"[0-9a-f]{{{2 * (_RANDOM_BYTES + _TAG_BYTES)}}}")


class PredictionIds:
    """Issues new prediction ids and checks that an id was issued with this secret.

    Built before the store is open (`secret` None); `use_secret` keys it once the worker
    has read the shared secret, and until then it raises NotReadyError.
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = b""
        if secret is not None:
            self.use_secret(secret)

    def use_secret(self, secret: bytes) -> None:
        """Key the ids with the store's shared secret (at least 16 bytes)."""
        if len(secret) < 16:
            raise ValueError(f"the prediction id secret has {len(secret)} bytes, expected >= 16")
        self._secret = secret

    def _tag(self, nonce: str) -> str:
        if not self._secret:
            raise NotReadyError("the store is not open yet: the worker is not ready")
        mac = hashlib.blake2b(nonce.encode(), key=self._secret[:64], digest_size=_TAG_BYTES)
        return mac.hexdigest()

    def new(self) -> str:
        """A fresh id (40 lowercase hex characters)."""
        # Uniqueness is all the nonce needs (the key makes the tag unforgeable), so the
        # fast generator will do; Python reseeds it in every forked worker.
        nonce = random.randbytes(_RANDOM_BYTES).hex()
        return nonce + self._tag(nonce)

    def issued(self, prediction_id: str) -> bool:
        """True when `prediction_id` was made by `new` with this secret."""
        if not _SHAPE.fullmatch(prediction_id):
            return False
        nonce, tag = prediction_id[: 2 * _RANDOM_BYTES], prediction_id[2 * _RANDOM_BYTES :]
        return hmac.compare_digest(tag, self._tag(nonce))
