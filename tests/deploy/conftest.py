"""Deploy tests reuse the server fixtures: tiny real models, private artifacts, apps."""

from __future__ import annotations

from tests.server.conftest import (  # noqa: F401  # fixtures are found by name
    artifacts,
    built_versions,
    client,
    client_for,
)
