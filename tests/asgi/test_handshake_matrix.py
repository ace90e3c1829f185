"""The opening-handshake matrix of ``serve()`` (tests/integration/test_server_handshake.py),
run against the ASGI endpoint under uvicorn, hypercorn, and mounted in Starlette."""

from __future__ import annotations

from tests.asgi.matrix import reuse
from tests.integration import test_server_handshake

_SERVER = "the ASGI server's business, not the endpoint's"

NOT_APPLICABLE = {
    "test_handshake_that_never_finishes_times_out": f"the handshake timeout is {_SERVER}",
    "test_frugal_compression_drops_context_takeover": f"permessage-deflate is {_SERVER}",
    "test_frugal_compression_with_a_bare_offer": f"permessage-deflate is {_SERVER}",
    "test_deflate_compression_keeps_context_takeover": f"permessage-deflate is {_SERVER}",
    "test_no_compression_sends_no_extension_header": f"permessage-deflate is {_SERVER}",
    "test_unknown_compression_is_refused": "serve()'s compression option",
    "test_serve_refuses_inconsistent_versions": "calls serve() (see test_endpoint.py)",
    "test_pre_bound_socket": f"listening sockets are {_SERVER}",
    "test_sock_and_port_together_are_refused": f"listening sockets are {_SERVER}",
    "test_reuse_port_lets_two_servers_share_a_port": f"listening sockets are {_SERVER}",
    "test_frames_larger_than_one_socket_read_arrive_whole": "serve()'s socket read size",
    "test_read_size_is_left_alone_where_it_is_already_small_or_absent": "serve()'s helper",
}

UVICORN_1005 = "uvicorn reports a connection that ended without a close frame as 1005, not 1006"
HYPERCORN_1006 = "hypercorn reports any close the station starts as 1006, without its code"

PER_SERVER: dict[tuple[str, ...], str] = {
    ("starlette", "test_malformed_identity_gets_400", "/CP%0A1"): (
        "Starlette's Mount does not route a path with a newline: its 404 (403 for a "
        "WebSocket) comes before the endpoint sees the request"
    ),
    ("hypercorn", "test_station_that_stops_answering_pings_is_dropped"): (
        "hypercorn pings (websocket_ping_interval) but never times out a silent station"
    ),
    # uvicorn drops it, reporting 1005 (test_endpoint.py checks that)
    ("uvicorn", "test_station_that_stops_answering_pings_is_dropped"): UVICORN_1005,
    ("starlette", "test_station_that_stops_answering_pings_is_dropped"): UVICORN_1005,
    ("hypercorn", "test_two_servers_are_independent"): HYPERCORN_1006,
}

reuse(test_server_handshake, globals(), NOT_APPLICABLE, PER_SERVER)
