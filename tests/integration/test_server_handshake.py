"""The server's opening handshake over real loopback WebSockets.

Version negotiation, station identity, the authenticate hook, connection and message
limits, compression and listening options, each checked on the wire: the HTTP status,
the response headers and the close code the station actually receives.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
import struct
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from csms_kit import (
    CsmsServer,
    Handshake,
    InMemoryRegistry,
    OcppVersion,
    Rejection,
    StationSession,
    on,
    serve,
)
from csms_kit.websocket import READ_SIZE, WebSocketTransport, read_in_small_chunks
from tests.helpers import wait_until

HOST = "127.0.0.1"
NOW = "2026-11-27T10:00:00Z"
TIMEOUT = 2.0
#: Any valid Sec-WebSocket-Key will do (the RFC 6455 example).
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ALL = ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")


class Csms(StationSession):
    """Answers Heartbeat in every version; boot gate off (tested in the lifecycle tests)."""

    boot_gate = False

    @on("Heartbeat")
    def heartbeat(self, request: Any) -> dict[str, Any]:
        return {"currentTime": NOW}


class Recorder:
    """Lifecycle hooks that remember what they saw."""

    def __init__(self) -> None:
        self.connected: list[StationSession] = []
        self.disconnected: list[tuple[StationSession, int | None, str]] = []

    def on_connect(self, session: StationSession) -> None:
        self.connected.append(session)

    def on_disconnect(self, session: StationSession, code: int | None, reason: str) -> None:
        self.disconnected.append((session, code, reason))


def start(sessions: Any = Csms, **options: Any) -> CsmsServer:
    """A server on a free loopback port, with short timeouts for tests."""
    options.setdefault("ping_interval", None)
    options.setdefault("close_timeout", 1)
    options.setdefault("open_timeout", TIMEOUT)
    return serve(sessions, HOST, 0, **options)


def ws_url(server: CsmsServer, path: str = "/CP-1") -> str:
    return f"ws://{HOST}:{server.port}{path}"


@contextlib.asynccontextmanager
async def station(
    server: CsmsServer,
    path: str = "/CP-1",
    offered: Sequence[str] | None = ("ocpp1.6",),
    **options: Any,
) -> AsyncIterator[ClientConnection]:
    """A websockets client connected to ``server`` at ``path`` offering ``offered``."""
    options.setdefault("ping_interval", None)
    options.setdefault("close_timeout", 1)
    options.setdefault("open_timeout", TIMEOUT)
    subprotocols = [Subprotocol(p) for p in offered] if offered else None
    async with connect(ws_url(server, path), subprotocols=subprotocols, **options) as ws:
        yield ws


async def heartbeat(ws: ClientConnection, message_id: str = "hb-1") -> list[Any]:
    """Send a Heartbeat CALL and return the answer frame."""
    await ws.send(json.dumps([2, message_id, "Heartbeat", {}]))
    answer = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert isinstance(answer, list)
    return answer


async def close_code_of(ws: ClientConnection) -> tuple[int, str]:
    """Wait for the server to close ``ws``; return the close frame it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
    frame = closed.value.rcvd
    assert frame is not None, "the server sent no close frame"
    return frame.code, frame.reason


async def eventually(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait until ``predicate()`` is true; fail after ``timeout`` seconds."""
    await wait_until(predicate, timeout)


# -- raw HTTP, to see the exact response --------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: Headers
    body: bytes
    #: The close frame (code, reason) the server sent after a 101, if any.
    close: tuple[int, str] | None = None


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One server-to-client WebSocket frame: (opcode, payload)."""
    first, second = await reader.readexactly(2)
    assert not second & 0x80, "server frames must not be masked"
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(length)


def close_frame(payload: bytes) -> bytes:
    """A masked (all-zero mask) client close frame carrying ``payload``."""
    return bytes([0x88, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


async def raw_request(
    port: int,
    path: str,
    headers: Sequence[tuple[str, str]] = (),
    *,
    protocols: str | None = None,
    initiate_close: bool = False,
) -> RawResponse:
    """Send a WebSocket upgrade request by hand and read the server's exact answer.

    After a 101, either wait for the server's close frame (it closes at once) or, with
    ``initiate_close``, close the connection ourselves; then echo and read to EOF.
    """
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {HOST}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {KEY}",
            "Sec-WebSocket-Version: 13",
        ]
        if protocols is not None:
            lines.append(f"Sec-WebSocket-Protocol: {protocols}")
        lines.extend(f"{name}: {value}" for name, value in headers)
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
        protocol, status, _ = status_line.split(" ", 2)
        assert protocol == "HTTP/1.1"
        parsed = Headers()
        for line in header_lines:
            name, _, value = line.partition(":")
            parsed[name] = value.strip()
        if int(status) != 101:
            body = await asyncio.wait_for(reader.read(), TIMEOUT)
            return RawResponse(int(status), parsed, body)
        if initiate_close:
            writer.write(close_frame(struct.pack("!H", 1000)))
        opcode, payload = await asyncio.wait_for(read_frame(reader), TIMEOUT)
        assert opcode == 0x8, f"expected a close frame, got opcode {opcode}"
        if not initiate_close:
            writer.write(close_frame(payload))  # echo, as RFC 6455 says
        await asyncio.wait_for(reader.read(), TIMEOUT)  # the server closes TCP
        (code,) = struct.unpack("!H", payload[:2])
        return RawResponse(101, parsed, b"", (code, payload[2:].decode()))
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def basic(username: str, password: bytes) -> tuple[str, str]:
    token = base64.b64encode(username.encode() + b":" + password).decode()
    return ("Authorization", f"Basic {token}")


# -- version negotiation ------------------------------------------------------------------


@pytest.mark.parametrize("offered", ALL)
async def test_single_offer_is_picked(offered: str) -> None:
    """A station offering one version gets it in Sec-WebSocket-Protocol and a session of it."""
    recorder = Recorder()
    async with (
        start(on_connect=recorder.on_connect) as server,
        station(server, offered=[offered]) as ws,
    ):
        assert ws.response.status_code == 101
        assert ws.response.headers.get_all("Sec-WebSocket-Protocol") == [offered]
        assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
        (session,) = recorder.connected
        assert session.version is OcppVersion.parse(offered)


@pytest.mark.parametrize(
    ("offered", "picked"),
    [
        (["ocpp1.6", "ocpp2.0.1", "ocpp2.1"], "ocpp2.1"),
        (["ocpp2.1", "ocpp1.6"], "ocpp2.1"),
        (["ocpp1.6", "ocpp2.0.1"], "ocpp2.0.1"),
        (["ocpp2.0.1", "ocpp1.6"], "ocpp2.0.1"),
        (["bogus", "ocpp1.6", "ocpp9"], "ocpp1.6"),
    ],
)
async def test_several_offers_pick_newest_by_default(offered: list[str], picked: str) -> None:
    """With no preference given the newest common version wins, whatever the station's order."""
    async with start() as server, station(server, offered=offered) as ws:
        assert ws.response.headers.get_all("Sec-WebSocket-Protocol") == [picked]
        assert ws.subprotocol == picked
        assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]


@pytest.mark.parametrize(
    ("versions", "offered", "picked"),
    [
        (["1.6", "2.0.1", "2.1"], ALL, "ocpp1.6"),
        (["2.0.1", "2.1", "1.6"], ALL, "ocpp2.0.1"),
        (["2.0.1", "2.1", "1.6"], ["ocpp2.1", "ocpp1.6"], "ocpp2.1"),
        ([OcppVersion.V16, "ocpp2.1"], ALL, "ocpp1.6"),
    ],
)
async def test_versions_argument_sets_preference(
    versions: list[Any], offered: Sequence[str], picked: str
) -> None:
    """``versions=[...]`` is the server's order of preference among the offered versions."""
    async with start(versions=versions) as server, station(server, offered=offered) as ws:
        assert ws.response.headers.get_all("Sec-WebSocket-Protocol") == [picked]
        assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]


async def test_mapping_of_some_versions_speaks_only_those() -> None:
    """A mapping of 1.6 and 2.0.1 picks 2.0.1 from all three; 2.1 alone is no common version."""
    sessions = {"1.6": Csms, "ocpp2.0.1": Csms}
    recorder = Recorder()
    async with start(sessions, on_connect=recorder.on_connect) as server:
        async with station(server, "/A", offered=ALL) as ws:
            assert ws.response.headers.get_all("Sec-WebSocket-Protocol") == ["ocpp2.0.1"]
            assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
        async with station(server, "/B", offered=["ocpp2.1"]) as ws:
            assert "Sec-WebSocket-Protocol" not in ws.response.headers
            code, reason = await close_code_of(ws)
            assert code == 1002
            assert "ocpp2.1" not in reason and "ocpp2.0.1" in reason
        assert [s.station_id for s in recorder.connected] == ["A"]


async def test_versions_restricts_a_single_session_class() -> None:
    """One class for every version with ``versions=["2.0.1"]`` speaks 2.0.1 only."""
    async with start(versions=["2.0.1"]) as server:
        async with station(server, offered=["ocpp1.6", "ocpp2.1"]) as ws:
            assert "Sec-WebSocket-Protocol" not in ws.response.headers
            assert (await close_code_of(ws))[0] == 1002
        async with station(server, offered=ALL) as ws:
            assert ws.subprotocol == "ocpp2.0.1"


@pytest.mark.parametrize("protocols", [None, "bogus", "ocpp1.5, ocpp3.0", "OCPP1.6"])
async def test_no_common_version_completes_handshake_then_closes_1002(
    protocols: str | None,
) -> None:
    """None or only unknown versions offered: HTTP 101 without the header, then close 1002."""
    recorder = Recorder()
    built: list[str] = []

    def factory(station_id: str, *args: Any, **kwargs: Any) -> StationSession:
        built.append(station_id)
        return Csms(station_id, *args, **kwargs)

    async with start(
        factory, on_connect=recorder.on_connect, on_disconnect=recorder.on_disconnect
    ) as server:
        response = await raw_request(server.port, "/CP-1", protocols=protocols)
        assert response.status == 101
        assert "Sec-WebSocket-Protocol" not in response.headers
        assert response.headers["Upgrade"].lower() == "websocket"
        assert response.close is not None
        code, reason = response.close
        assert code == 1002
        assert all(v in reason for v in ALL), "the reason should list what the server speaks"
        assert not server.sessions
        assert await server.registry.count() == 0
    assert built == [], "no session may be built without a common version"
    assert recorder.connected == [] and recorder.disconnected == []


async def test_no_common_version_with_websockets_client() -> None:
    """A websockets client offering nothing we speak connects, then is closed with 1002."""
    recorder = Recorder()
    async with start(on_connect=recorder.on_connect) as server:
        async with station(server, offered=None) as ws:
            assert ws.subprotocol is None
            assert "Sec-WebSocket-Protocol" not in ws.response.headers
            assert (await close_code_of(ws))[0] == 1002
        async with station(server, offered=["soap"]) as ws:
            assert (await close_code_of(ws))[0] == 1002
        # the server is unharmed
        async with station(server, offered=["ocpp1.6"]) as ws:
            assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
    assert [s.station_id for s in recorder.connected] == ["CP-1"]


# -- station identity ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "identity"),
    [
        ("/CP-1", "CP-1"),
        ("/CP%2001", "CP 01"),
        ("/caf%C3%A9", "café"),
        ("/%E5%85%85%E9%9B%BB", "充電"),
        ("/" + "A" * 48, "A" * 48),
        ("/" + "%C3%A9" * 48, "é" * 48),
        ("/CP-1?token=abc&x=%3A", "CP-1"),
        ("/CP%3F1", "CP?1"),
    ],
)
async def test_valid_identity_is_decoded(path: str, identity: str) -> None:
    """The last path segment is percent-decoded as UTF-8; the query string is ignored."""
    recorder = Recorder()
    async with start(on_connect=recorder.on_connect) as server, station(server, path) as ws:
        assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
        (session,) = recorder.connected
        assert session.station_id == identity
        assert session.handshake is not None and session.handshake.station_id == identity
        assert server.registry.local_session(identity) is session


@pytest.mark.parametrize(
    "path",
    [
        "/" + "A" * 49,
        "/" + "%C3%A9" * 49,
        "/CP:1",
        "/CP%3A1",
        "/CP%3a1",
        "/:",
        "/",
        "/?id=CP-1",
        "/CP%2F1",
        "/CP%2f1",
        "/CP%001",
        "/CP%0A1",
        "/CP%09",
        "/CP%7F",
        "/CP%C2%85",
        "/CP\x01",
        "/CP\x7f",
        "/CP%FF",
        "/CP%C3",
        "/CP%C3%28",
        "/CP%ED%A0%80",
    ],
)
async def test_malformed_identity_gets_400(path: str) -> None:
    """Too long, ``:``, empty, ``/``, control characters or bad UTF-8: HTTP 400, no session."""
    recorder = Recorder()
    async with start(on_connect=recorder.on_connect) as server:
        response = await raw_request(server.port, path, protocols="ocpp1.6")
        assert response.status == 400
        assert "Sec-WebSocket-Accept" not in response.headers
    assert recorder.connected == []


@pytest.mark.parametrize(
    ("prefix", "path", "status"),
    [
        ("/ocpp", "/CP-1", 404),
        ("/ocpp", "/other/CP-1", 404),
        ("/ocpp", "/ocppx/CP-1", 404),
        ("/ocpp", "/ocpp", 404),
        ("/ocpp", "/ocpp/a/CP-1", 404),
        ("/ocpp", "/ocpp/CP-1/", 404),
        ("/ocpp", "/ocpp/", 400),
        ("/ocpp", "/ocpp/CP:1", 400),
        ("/", "/a/CP-1", 404),
        ("/", "//CP-1", 404),
        ("ocpp/v16/", "/ocpp/CP-1", 404),
    ],
)
async def test_path_outside_prefix_gets_404(prefix: str, path: str, status: int) -> None:
    """A path that is not ``<prefix><identity>`` gets 404; an empty identity under it 400."""
    async with start(path_prefix=prefix) as server:
        response = await raw_request(server.port, path, protocols="ocpp1.6")
        assert response.status == status


@pytest.mark.parametrize(
    ("prefix", "path"),
    [("/ocpp", "/ocpp/CP-1"), ("ocpp/", "/ocpp/CP-1"), ("/ocpp/v16", "/ocpp/v16/CP-1?a=b")],
)
async def test_identity_under_prefix_is_accepted(prefix: str, path: str) -> None:
    """Under ``path_prefix`` the identity is the one segment after it."""
    recorder = Recorder()
    async with (
        start(path_prefix=prefix, on_connect=recorder.on_connect) as server,
        station(server, path) as ws,
    ):
        assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
        assert [s.station_id for s in recorder.connected] == ["CP-1"]


# -- the authenticate hook ----------------------------------------------------------------


def both_kinds(func: Callable[..., Any], asynchronous: bool) -> Callable[..., Any]:
    """``func`` itself, or a coroutine function doing the same after yielding once."""
    if not asynchronous:
        return func

    async def hook(*args: Any) -> Any:
        await asyncio.sleep(0)
        return func(*args)

    return hook


KINDS = pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])


@KINDS
async def test_authenticate_404_for_unknown_station(asynchronous: bool) -> None:
    """A Rejection(404) from the hook reaches the station as HTTP 404; known ones get in."""
    known = {"CP-1"}

    def authenticate(handshake: Handshake) -> Rejection | None:
        if handshake.station_id not in known:
            return Rejection(404, "unknown station\n")
        return None

    recorder = Recorder()
    async with start(
        authenticate=both_kinds(authenticate, asynchronous), on_connect=recorder.on_connect
    ) as server:
        response = await raw_request(server.port, "/CP-2", protocols="ocpp1.6")
        assert response.status == 404
        assert response.body == b"unknown station\n"
        with pytest.raises(InvalidStatus) as refused:
            async with station(server, "/CP-3"):
                pass
        assert refused.value.response.status_code == 404
        async with station(server, "/CP-1") as ws:
            assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
    assert [s.station_id for s in recorder.connected] == ["CP-1"]


@KINDS
async def test_authenticate_401_with_www_authenticate(asynchronous: bool) -> None:
    """A Rejection(401) with headers sends exactly that status and header."""

    def authenticate(handshake: Handshake) -> Rejection | None:
        if handshake.password != b"0123456789abcdef":
            return Rejection(401, headers=(("WWW-Authenticate", 'Basic realm="ocpp"'),))
        return None

    async with start(authenticate=both_kinds(authenticate, asynchronous)) as server:
        for headers in ([], [basic("CP-1", b"wrong-password-x")], [("Authorization", "Bearer x")]):
            response = await raw_request(server.port, "/CP-1", headers, protocols="ocpp1.6")
            assert response.status == 401
            assert response.headers.get_all("WWW-Authenticate") == ['Basic realm="ocpp"']
        good = [basic("CP-1", b"0123456789abcdef")]
        async with station(server, additional_headers=good) as ws:
            assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]


@KINDS
async def test_authenticate_returning_none_accepts(asynchronous: bool) -> None:
    """A hook returning None lets every station in."""
    calls: list[str] = []

    def authenticate(handshake: Handshake) -> None:
        calls.append(handshake.station_id)

    async with (
        start(authenticate=both_kinds(authenticate, asynchronous)) as server,
        station(server, "/A") as a,
        station(server, "/B") as b,
    ):
        assert await heartbeat(a) == [3, "hb-1", {"currentTime": NOW}]
        assert await heartbeat(b) == [3, "hb-1", {"currentTime": NOW}]
    assert sorted(calls) == ["A", "B"]


@KINDS
async def test_authenticate_raising_gives_500(
    asynchronous: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook that raises refuses with HTTP 500, logs the error, and the server goes on."""

    def authenticate(handshake: Handshake) -> None:
        if handshake.station_id == "bad":
            raise RuntimeError("database down")

    recorder = Recorder()
    caplog.set_level(logging.ERROR, "csms_kit")
    async with start(
        authenticate=both_kinds(authenticate, asynchronous), on_connect=recorder.on_connect
    ) as server:
        response = await raw_request(server.port, "/bad", protocols="ocpp1.6")
        assert response.status == 500
        assert b"database down" not in response.body  # no internals leak to the station
        async with station(server, "/good") as ws:
            assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
    assert [s.station_id for s in recorder.connected] == ["good"]
    failures = [r for r in caplog.records if r.exc_info and "database down" in str(r.exc_info[1])]
    assert failures, "the hook's exception should be logged with its traceback"


@KINDS
@pytest.mark.parametrize("garbage", [True, False, 404, "no", {"status": 401}])
async def test_authenticate_returning_garbage_gives_500(
    asynchronous: bool, garbage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook returning something other than None or a Rejection refuses with HTTP 500."""
    caplog.set_level(logging.ERROR, "csms_kit")
    hook = both_kinds(lambda handshake: garbage, asynchronous)
    recorder = Recorder()
    async with start(authenticate=hook, on_connect=recorder.on_connect) as server:
        response = await raw_request(server.port, "/CP-1", protocols="ocpp1.6")
        assert response.status == 500
    assert recorder.connected == []
    assert any(r.levelno >= logging.ERROR for r in caplog.records)


async def test_authenticate_sees_the_whole_handshake() -> None:
    """The Handshake has station id, path, headers, peer address, offers and Basic credentials."""
    seen: list[Handshake] = []
    password = b"\x00\x01secret\xff\xfe:colon"

    def authenticate(handshake: Handshake) -> None:
        seen.append(handshake)

    async with (
        start(authenticate=authenticate) as server,
        station(
            server,
            "/CP%2001?fw=1.2",
            offered=["ocpp2.0.1", "ocpp1.6"],
            additional_headers=[basic("CP 01", password), ("X-Vendor", "ACME")],
        ) as ws,
    ):
        assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
        local_port = ws.local_address[1]
        server_port = server.port
    (handshake,) = seen
    assert handshake.station_id == "CP 01"
    assert handshake.path == "/CP%2001?fw=1.2"
    assert handshake.headers["X-Vendor"] == "ACME"
    assert handshake.headers["Host"] == f"{HOST}:{server_port}"
    assert handshake.remote_address[:2] == (HOST, local_port)
    assert handshake.subprotocols == ("ocpp2.0.1", "ocpp1.6")
    assert handshake.username == "CP 01"
    assert isinstance(handshake.password, bytes)
    assert handshake.password == password
    assert handshake.peer_certificate is None


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer abc",
        "Basic",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:pw").decode(),
    ],
)
async def test_authenticate_sees_no_credentials_when_absent_or_malformed(
    header: str | None,
) -> None:
    """Without a well-formed Basic header, username and password are None."""
    seen: list[Handshake] = []
    headers = [("Authorization", header)] if header is not None else []
    async with (
        start(authenticate=seen.append) as server,
        station(server, additional_headers=headers) as ws,
    ):
        assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
    (handshake,) = seen
    assert (handshake.username, handshake.password) == (None, None)


@KINDS
async def test_handshake_state_reaches_the_session(asynchronous: bool) -> None:
    """What the hook puts in ``handshake.state`` is on ``session.handshake.state``."""
    seen: list[Handshake] = []

    def authenticate(handshake: Handshake) -> None:
        handshake.state["tenant"] = f"tenant-of-{handshake.station_id}"
        seen.append(handshake)

    recorder = Recorder()
    async with (
        start(
            authenticate=both_kinds(authenticate, asynchronous), on_connect=recorder.on_connect
        ) as server,
        station(server, "/CP-7") as ws,
    ):
        assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
        (session,) = recorder.connected
        assert session.handshake is seen[0]
        assert session.handshake.state == {"tenant": "tenant-of-CP-7"}


async def test_authenticate_runs_after_identity_check() -> None:
    """A malformed identity is refused before the hook is asked."""
    seen: list[Handshake] = []
    async with start(authenticate=seen.append, path_prefix="/ocpp") as server:
        assert (await raw_request(server.port, "/ocpp/CP:1", protocols="ocpp1.6")).status == 400
        assert (await raw_request(server.port, "/x/CP-1", protocols="ocpp1.6")).status == 404
    assert seen == []


async def test_rejected_station_before_version_check() -> None:
    """A refused station gets its HTTP status even if it offers no version we speak."""
    async with start(authenticate=lambda h: Rejection(403, "forbidden\n")) as server:
        response = await raw_request(server.port, "/CP-1", protocols="bogus")
        assert (response.status, response.body) == (403, b"forbidden\n")


# -- limits -------------------------------------------------------------------------------


async def test_max_connections_refuses_with_503_until_one_leaves() -> None:
    """Past ``max_connections`` a station gets HTTP 503; once one leaves, a new one gets in."""
    async with start(max_connections=2) as server:
        async with station(server, "/A") as a:
            async with station(server, "/B") as b:
                await eventually(lambda: len(server.sessions) == 2)
                response = await raw_request(server.port, "/C", protocols="ocpp1.6")
                assert response.status == 503
                with pytest.raises(InvalidStatus) as refused:
                    async with station(server, "/D"):
                        pass
                assert refused.value.response.status_code == 503
                assert await heartbeat(b) == [3, "hb-1", {"currentTime": NOW}]
            await eventually(lambda: len(server.sessions) == 1)
            async with station(server, "/C") as c:
                assert await heartbeat(c) == [3, "hb-1", {"currentTime": NOW}]
                assert await heartbeat(a) == [3, "hb-1", {"currentTime": NOW}]
            await eventually(lambda: len(server.sessions) == 1)
        await eventually(lambda: not server.sessions)
        assert await server.registry.count() == 0


@pytest.mark.parametrize("auth_delay", [None, 0.05], ids=["no-auth", "slow-auth"])
async def test_max_connections_holds_for_simultaneous_handshakes(auth_delay: float | None) -> None:
    """Stations connecting at the same moment cannot exceed ``max_connections`` together."""

    async def authenticate(handshake: Handshake) -> None:
        assert auth_delay is not None
        await asyncio.sleep(auth_delay)  # e.g. a database lookup

    hook = authenticate if auth_delay is not None else None
    async with start(max_connections=2, authenticate=hook) as server:

        async def attempt(name: str) -> ClientConnection | int:
            try:
                return await connect(
                    ws_url(server, f"/{name}"),
                    subprotocols=[Subprotocol("ocpp1.6")],
                    ping_interval=None,
                    close_timeout=1,
                    open_timeout=TIMEOUT,
                )
            except InvalidStatus as refused:
                return refused.response.status_code

        results = await asyncio.gather(*(attempt(f"CP-{i}") for i in range(6)))
        accepted = [r for r in results if isinstance(r, ClientConnection)]
        try:
            await asyncio.sleep(0.1)  # let every accepted handshake become a session
            assert sorted(r for r in results if isinstance(r, int)) == [503] * 4
            assert len(accepted) == 2
            assert len(server.sessions) <= 2
        finally:
            await asyncio.gather(*(ws.close() for ws in accepted))


async def test_oversized_frame_closes_with_1009() -> None:
    """A frame over ``max_message_size`` closes that connection with 1009; others carry on."""
    recorder = Recorder()
    async with (
        start(max_message_size=1024, on_disconnect=recorder.on_disconnect) as server,
        station(server, "/calm") as calm,
    ):
        async with station(server, "/big", compression=None) as big:
            assert await heartbeat(big) == [3, "hb-1", {"currentTime": NOW}]
            frame = json.dumps([2, "x", "Heartbeat", {"pad": "a" * 1100}])
            await big.send(frame)
            assert (await close_code_of(big))[0] == 1009
        await eventually(lambda: len(recorder.disconnected) == 1)
        assert recorder.disconnected[0][0].station_id == "big"
        assert await heartbeat(calm) == [3, "hb-1", {"currentTime": NOW}]
        async with station(server, "/next") as new:
            assert await heartbeat(new) == [3, "hb-1", {"currentTime": NOW}]
            assert await heartbeat(calm, "hb-2") == [3, "hb-2", {"currentTime": NOW}]


async def test_compressed_bomb_closes_with_1009() -> None:
    """A small compressed frame that inflates past the limit is refused (1009), not inflated."""
    async with start(max_message_size=64 * 1024) as server:
        async with station(server, "/bomb") as bomb:  # the client's default: permessage-deflate
            assert "permessage-deflate" in bomb.response.headers["Sec-WebSocket-Extensions"]
            await bomb.send('[2,"x","Heartbeat",{"pad":"' + "a" * 1_000_000 + '"}]')
            assert (await close_code_of(bomb))[0] == 1009
        async with station(server, "/next") as new:
            assert await heartbeat(new) == [3, "hb-1", {"currentTime": NOW}]


async def test_frame_at_the_limit_is_accepted() -> None:
    """A frame of exactly ``max_message_size`` bytes is read (and answered)."""
    prefix, suffix = '[2,"x","Heartbeat",{"pad":"', '"}]'
    async with start(max_message_size=1024) as server, station(server, compression=None) as ws:
        await ws.send(prefix + "a" * (1024 - len(prefix) - len(suffix)) + suffix)
        answer = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert answer[:2] == [4, "x"]  # an extra property: a CALLERROR, not a close
        assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]


async def test_handshake_that_never_finishes_times_out() -> None:
    """A connection that sends no complete request is dropped after ``open_timeout``."""
    recorder = Recorder()
    async with start(open_timeout=0.2, on_connect=recorder.on_connect) as server:
        for partial in (b"", b"GET /CP-1 HTTP/1.1\r\nHost: x\r\n"):
            reader, writer = await asyncio.open_connection(HOST, server.port)
            try:
                writer.write(partial)
                # the server gives up: it closes the TCP connection (maybe after an HTTP error)
                rest = await asyncio.wait_for(reader.read(), TIMEOUT)
                assert rest == b"" or rest.startswith(b"HTTP/1.1 ")
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        async with station(server) as ws:
            assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
    assert [s.station_id for s in recorder.connected] == ["CP-1"]


async def test_station_that_stops_answering_pings_is_dropped() -> None:
    """With ``ping_interval``/``ping_timeout``, a station that never answers a ping is dropped."""
    recorder = Recorder()
    async with start(
        ping_interval=0.1,
        ping_timeout=0.1,
        close_timeout=0.1,
        on_disconnect=recorder.on_disconnect,
    ) as server:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        try:
            writer.write(
                (
                    f"GET /mute HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
                    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
                ).encode()
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            assert head.startswith(b"HTTP/1.1 101 ")
            opcode, _ = await asyncio.wait_for(read_frame(reader), TIMEOUT)
            assert opcode == 0x9  # a ping, which we never answer
            await eventually(lambda: bool(recorder.disconnected))
            ((session, code, _),) = recorder.disconnected
            assert session.station_id == "mute"
            assert code in (1006, 1011)
            assert not server.sessions
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


# -- compression --------------------------------------------------------------------------


def extension_params(headers: Headers) -> list[set[str]]:
    """The negotiated extensions, each as the set of its name and parameters."""
    return [
        {part.strip().split("=")[0] for part in extension.split(";")}
        for value in headers.get_all("Sec-WebSocket-Extensions")
        for extension in value.split(",")
    ]


@pytest.mark.parametrize("compression", ["frugal", "default"])
async def test_frugal_compression_drops_context_takeover(compression: str) -> None:
    """``"frugal"`` (the default) negotiates permessage-deflate without context takeover."""
    options = {} if compression == "default" else {"compression": compression}
    async with start(**options) as server, station(server) as ws:
        (params,) = extension_params(ws.response.headers)
        assert "permessage-deflate" in params
        assert {"server_no_context_takeover", "client_no_context_takeover"} <= params
        for i in range(3):  # compressed messages both ways, each on its own
            assert await heartbeat(ws, f"hb-{i}") == [3, f"hb-{i}", {"currentTime": NOW}]


async def test_frugal_compression_with_a_bare_offer() -> None:
    """A station offering bare ``permessage-deflate`` gets it, without context takeover."""
    async with start(compression="frugal") as server:
        response = await raw_request(
            server.port,
            "/CP-1",
            [("Sec-WebSocket-Extensions", "permessage-deflate")],
            protocols="ocpp2.0.1",
            initiate_close=True,
        )
        assert response.status == 101
        assert response.headers["Sec-WebSocket-Protocol"] == "ocpp2.0.1"
        (params,) = extension_params(response.headers)
        assert {
            "permessage-deflate",
            "server_no_context_takeover",
            "client_no_context_takeover",
        } <= params
        assert "client_max_window_bits" not in params  # the station did not offer it


async def test_deflate_compression_keeps_context_takeover() -> None:
    """``"deflate"`` negotiates permessage-deflate with context takeover."""
    async with start(compression="deflate") as server, station(server) as ws:
        (params,) = extension_params(ws.response.headers)
        assert "permessage-deflate" in params
        assert not params & {"server_no_context_takeover", "client_no_context_takeover"}
        for i in range(3):
            assert await heartbeat(ws, f"hb-{i}") == [3, f"hb-{i}", {"currentTime": NOW}]


async def test_no_compression_sends_no_extension_header() -> None:
    """``compression=None`` answers an offer of permessage-deflate without the extension."""
    async with start(compression=None) as server, station(server) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]


async def test_unknown_compression_is_refused() -> None:
    """A compression setting that is not a known one fails at once."""
    with pytest.raises(ValueError, match="compression"):
        serve(Csms, HOST, 0, compression="brotli")  # type: ignore[arg-type]


# -- listening ----------------------------------------------------------------------------


async def test_serve_refuses_inconsistent_versions() -> None:
    """A preference naming a version without a factory, or no factory at all, is refused."""
    from csms_kit import UsageError

    with pytest.raises(UsageError, match=r"2\.1"):
        serve({"1.6": Csms}, HOST, 0, versions=["2.1", "1.6"])
    with pytest.raises(UsageError):
        serve({}, HOST, 0)
    with pytest.raises(ValueError, match="unknown OCPP version"):
        serve({"3.0": Csms}, HOST, 0)


async def test_pre_bound_socket() -> None:
    """``sock=`` serves on a socket the application bound itself."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
        async with serve(Csms, sock=sock, ping_interval=None) as server:
            assert server.port == port
            async with station(server) as ws:
                assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
    finally:
        sock.close()


async def test_sock_and_port_together_are_refused() -> None:
    """Giving both ``sock`` and ``host``/``port`` is a usage error."""
    from csms_kit import UsageError

    with socket.socket() as sock, pytest.raises(UsageError):
        serve(Csms, HOST, 0, sock=sock)


async def test_reuse_port_lets_two_servers_share_a_port() -> None:
    """With ``reuse_port=True`` two servers listen on one port; without it binding fails."""
    async with start(reuse_port=True) as first:
        port = first.port
        async with serve(Csms, HOST, port, reuse_port=True, ping_interval=None) as second:
            assert second.port == port
            async with contextlib.AsyncExitStack() as stack:
                for i in range(8):
                    ws = await stack.enter_async_context(station(first, f"/CP-{i}"))
                    assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
                # each station is on exactly one of the two (separate registries)
                await eventually(lambda: len(first.sessions) + len(second.sessions) == 8)
                ids_first = {s.station_id for s in first.sessions}
                ids_second = {s.station_id for s in second.sessions}
                assert not ids_first & ids_second
            with pytest.raises(OSError):
                await serve(Csms, HOST, port).start()


async def test_two_servers_are_independent() -> None:
    """Two servers have separate registries: the same identity on both replaces nothing."""
    recorder_a, recorder_b = Recorder(), Recorder()
    async with (
        start(on_connect=recorder_a.on_connect, on_disconnect=recorder_a.on_disconnect) as a,
        start(on_connect=recorder_b.on_connect, on_disconnect=recorder_b.on_disconnect) as b,
    ):
        assert a.registry is not b.registry
        async with (
            station(a, "/CP-1") as on_a,
            station(b, "/CP-1") as on_b,
            station(a, "/only-a") as only_a,
        ):
            assert await heartbeat(on_a) == [3, "hb-1", {"currentTime": NOW}]
            assert await heartbeat(on_b) == [3, "hb-1", {"currentTime": NOW}]
            assert await heartbeat(only_a) == [3, "hb-1", {"currentTime": NOW}]
            assert sorted(await a.registry.station_ids()) == ["CP-1", "only-a"]
            assert await b.registry.station_ids() == ["CP-1"]
            assert not await b.registry.is_connected("only-a")
            assert a.registry.local_session("CP-1") is not b.registry.local_session("CP-1")
        await eventually(lambda: len(recorder_a.disconnected) + len(recorder_b.disconnected) == 3)
        assert [d[1] for d in recorder_b.disconnected] == [1000]
        assert sorted((d[0].station_id, d[1]) for d in recorder_a.disconnected) == [
            ("CP-1", 1000),
            ("only-a", 1000),
        ]


async def test_shared_registry_sees_stations_of_both_servers() -> None:
    """A registry given to two servers sees, and can call, the stations of both."""
    registry = InMemoryRegistry()
    async with (
        start(registry=registry) as a,
        start(registry=registry) as b,
        station(a, "/on-a") as ws_a,
        station(b, "/on-b") as ws_b,
    ):
        assert a.registry is registry and b.registry is registry
        await registry.wait_connected("on-a", TIMEOUT)
        await registry.wait_connected("on-b", TIMEOUT)
        assert sorted(registry) == ["on-a", "on-b"]
        assert {s.station_id for s in a.sessions} == {"on-a"}
        assert {s.station_id for s in b.sessions} == {"on-b"}
        assert await heartbeat(ws_a) == [3, "hb-1", {"currentTime": NOW}]
        assert await heartbeat(ws_b) == [3, "hb-1", {"currentTime": NOW}]
        # closing one server leaves the other's stations in the shared registry
        await a.close()
        await eventually(lambda: "on-a" not in registry)
        assert sorted(registry) == ["on-b"]
        assert await heartbeat(ws_b, "hb-2") == [3, "hb-2", {"currentTime": NOW}]


async def test_shared_registry_replaces_across_servers() -> None:
    """With a shared registry, a station reconnecting to the other server replaces its old link."""
    registry = InMemoryRegistry()
    async with (
        start(registry=registry) as a,
        start(registry=registry) as b,
        station(a, "/CP-1") as old,
    ):
        await registry.wait_connected("CP-1", TIMEOUT)
        first = registry.get("CP-1")
        async with station(b, "/CP-1") as new:
            code, reason = await close_code_of(old)
            assert code == 1000 and reason.startswith("replaced")
            await eventually(lambda: registry.get("CP-1") is not first)
            assert await heartbeat(new) == [3, "hb-1", {"currentTime": NOW}]
            assert registry.get("CP-1") in b.sessions


class Echo(Csms):
    """Answers a DataTransfer with the length of its data."""

    @on("DataTransfer")
    def data_transfer(self, request: Any) -> dict[str, Any]:
        return {"status": "Accepted", "data": str(len(request.data))}


async def test_frames_larger_than_one_socket_read_arrive_whole() -> None:
    """The server reads plain sockets in small chunks; a large frame still arrives whole."""
    data = "x" * (3 * READ_SIZE + 17)
    async with (
        start(Echo, max_message_size=4 * READ_SIZE) as server,
        station(server, compression=None) as ws,
    ):
        assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
        (session,) = server.sessions
        assert isinstance(session.transport, WebSocketTransport)
        assert session.transport.connection.transport.max_size == READ_SIZE
        request = {"vendorId": "v", "data": data}
        await ws.send(json.dumps([2, "big", "DataTransfer", request]))
        answer = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert answer == [3, "big", {"status": "Accepted", "data": str(len(data))}]


def test_read_size_is_left_alone_where_it_is_already_small_or_absent() -> None:
    class Small:
        max_size = 4096

    small, bare = Small(), object()
    read_in_small_chunks(small)
    read_in_small_chunks(bare)
    assert small.max_size == 4096
    assert not hasattr(bare, "max_size")
