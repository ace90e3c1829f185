"""The session-lifecycle matrix of ``serve()`` (tests/integration/test_server_lifecycle.py),
run against the ASGI endpoint under uvicorn, hypercorn, and mounted in Starlette."""

from __future__ import annotations

from tests.asgi.matrix import reuse
from tests.integration import test_server_lifecycle

SERVE_FOREVER = "serve_forever() is serve()'s; the ASGI server runs the endpoint"

NOT_APPLICABLE = {
    "test_serve_forever_returns_after_close": SERVE_FOREVER,
    "test_serve_forever_closes_when_cancelled": SERVE_FOREVER,
    "test_new_connections_refused_during_shutdown": (
        "the endpoint cannot stop the ASGI server listening: a station connecting during "
        "the shutdown gets 503 instead of a refused TCP connection (test_endpoint.py)"
    ),
}

UVICORN_1005 = "uvicorn reports a connection that ended without a close frame as 1005, not 1006"
HYPERCORN_1006 = "hypercorn reports any close the station starts as 1006, without its code"

PER_SERVER: dict[tuple[str, ...], str] = {
    ("uvicorn", "test_on_disconnect_without_close_frame_gets_1006"): UVICORN_1005,
    ("starlette", "test_on_disconnect_without_close_frame_gets_1006"): UVICORN_1005,
    ("hypercorn", "test_on_connect_and_on_disconnect_with_station_close_frame"): HYPERCORN_1006,
    ("hypercorn", "test_on_disconnect_for_a_replaced_connection"): HYPERCORN_1006,
}

reuse(test_server_lifecycle, globals(), NOT_APPLICABLE, PER_SERVER)
