"""The session-lifecycle matrix of ``serve()`` (tests/integration/test_server_lifecycle.py),
run against the ASGI endpoint under uvicorn, hypercorn, and mounted in Starlette."""

from __future__ import annotations

from tests.asgi.matrix import reuse
from tests.integration import test_server_lifecycle

NOT_APPLICABLE = {
    "test_serve_forever_returns_after_close": "serve_forever() is serve()'s; the ASGI server runs",
    "test_serve_forever_closes_when_cancelled": "serve_forever() is serve()'s; the ASGI server runs",
}

PER_SERVER: dict[tuple[str, ...], str] = {}

reuse(test_server_lifecycle, globals(), NOT_APPLICABLE, PER_SERVER)
