"""What only the ASGI endpoint does: mounting, lifespan, refusals per server, pings,
calls from threads, and the ``ocpp`` package's ChargePoint as an independent station."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI
from ocpp.routing import on as station_on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from starlette.applications import Starlette
from starlette.routing import Mount
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from csms_kit import (
    CallError,
    StationNotConnected,
    StationSession,
    UsageError,
    on,
)
from csms_kit.asgi import AsgiTransport, OcppEndpoint, _too_big, ocpp_endpoint
from csms_kit.testing import connect_scripted
from csms_kit.transport import Transport
from tests.asgi.harness import HOST, AsgiServer, starlette_app
from tests.helpers import wait_until
from tests.integration.test_server_handshake import (
    KEY,
    NOW,
    Csms,
    Recorder,
    heartbeat,
    raw_request,
    read_frame,
    test_malformed_identity_gets_400,
    test_valid_identity_is_decoded,
)

TIMEOUT = 5.0
BOTH = pytest.mark.parametrize("kind", ["uvicorn", "hypercorn"])


def cases(test: Any) -> list[Any]:
    """The parameter values of a matrix test (its only parametrize mark)."""
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    return list(mark.args[1])


@contextlib.asynccontextmanager
async def running(kind: str, endpoint: OcppEndpoint, app: Any = None, **options: Any) -> Any:
    async with AsgiServer(kind, endpoint, app, **options) as server:
        yield server


# -- mounting ---------------------------------------------------------------------------


def fastapi_app(endpoint: OcppEndpoint) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with endpoint:
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"stations": len(endpoint.sessions)}

    app.mount("/ocpp", endpoint)
    return app


@BOTH
@pytest.mark.parametrize(("path", "identity"), cases(test_valid_identity_is_decoded))
async def test_mounted_identity_is_decoded_below_the_mount(
    kind: str, path: str, identity: str
) -> None:
    """Mounted at /ocpp, the identity is the segment after it, percent-decoded."""
    recorder = Recorder()
    endpoint = ocpp_endpoint(Csms, on_connect=recorder.on_connect)
    async with (
        running(kind, endpoint, starlette_app(endpoint, "/ocpp")) as server,
        connect(
            f"ws://{HOST}:{server.port}/ocpp{path}",
            subprotocols=[Subprotocol("ocpp1.6")],
            open_timeout=TIMEOUT,
        ) as ws,
    ):
        assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
        (session,) = recorder.connected
        assert session.station_id == identity
        assert session.handshake is not None
        assert session.handshake.path == "/ocpp" + path
        assert endpoint.registry.local_session(identity) is session


# Starlette's Mount does not route a decoded newline (its regex's "."): not ours to answer.
MALFORMED = [p for p in cases(test_malformed_identity_gets_400) if "%0A" not in p]


@BOTH
@pytest.mark.parametrize("path", MALFORMED)
async def test_mounted_malformed_identity_gets_400(kind: str, path: str) -> None:
    """Below the mount, a malformed identity gets 400 as with serve()."""
    endpoint = ocpp_endpoint(Csms)
    async with running(kind, endpoint, starlette_app(endpoint, "/ocpp")) as server:
        response = await raw_request(server.port, "/ocpp" + path, protocols="ocpp1.6")
        assert response.status == 400
    assert not endpoint.sessions


@BOTH
async def test_fastapi_serves_http_and_ocpp_on_one_port(kind: str) -> None:
    """One port: a FastAPI route answers HTTP, the mounted endpoint answers OCPP."""
    endpoint = ocpp_endpoint(Csms)
    async with running(kind, endpoint, fastapi_app(endpoint)) as server:
        base = f"http://{HOST}:{server.port}"
        async with (
            httpx.AsyncClient(base_url=base) as client,
            connect_scripted(f"ws://{HOST}:{server.port}/ocpp", "CP-1", "ocpp1.6") as peer,
        ):
            assert await peer.call("1", "Heartbeat", {}) == [3, "1", {"currentTime": NOW}]
            assert (await client.get("/health")).json() == {"stations": 1}
            plain = await client.get("/ocpp/CP-2")
            assert plain.status_code == 426  # plain HTTP at the endpoint
            assert await endpoint.registry.station_ids() == ["CP-1"]


async def test_path_prefix_applies_below_the_mount() -> None:
    """``path_prefix`` is read below the mount point: /ocpp + /v16/<id>."""
    endpoint = ocpp_endpoint(Csms, path_prefix="/v16")
    async with running("uvicorn", endpoint, starlette_app(endpoint, "/ocpp")) as server:
        assert (await raw_request(server.port, "/ocpp/CP-1", protocols="ocpp1.6")).status == 404
        async with connect_scripted(
            f"ws://{HOST}:{server.port}/ocpp/v16", "CP-1", "ocpp1.6"
        ) as peer:
            assert await peer.call("1", "Heartbeat", {}) == [3, "1", {"currentTime": NOW}]


# -- lifecycle --------------------------------------------------------------------------


async def test_not_started_refuses_with_503_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    """Mounted without joining the lifespan: stations get 503 and the log says what to do."""
    endpoint = ocpp_endpoint(Csms)
    app = Starlette(routes=[Mount("/ocpp", app=endpoint)])  # no lifespan
    server = AsgiServer("uvicorn", endpoint, app)
    server._started = lambda: True  # type: ignore[method-assign]  # the endpoint never starts
    async with server:
        response = await raw_request(server.port, "/ocpp/CP-1", protocols="ocpp1.6")
        assert response.status == 503
    assert any("async with endpoint" in r.getMessage() for r in caplog.records)


@BOTH
async def test_lifespan_starts_and_stops_the_top_level_endpoint(kind: str) -> None:
    """As the top-level app, the endpoint starts with the lifespan and closes its sessions
    when the server stops; the registry it made is closed, on_disconnect is called."""
    recorder = Recorder()
    endpoint = ocpp_endpoint(Csms, on_disconnect=recorder.on_disconnect)
    server = AsgiServer(kind, endpoint)
    async with server, connect_scripted(f"ws://{HOST}:{server.port}", "CP-1", "ocpp1.6") as peer:
        assert await peer.call("1", "Heartbeat", {}) == [3, "1", {"currentTime": NOW}]
        assert endpoint.state == "running"
        await asyncio.wait_for(server.stop(), TIMEOUT)
        code, _ = await peer.closed_with()
        assert code in (1001, 1006, 1011, 1012)  # the server's own close, before the lifespan
    assert endpoint.state == "closed"
    assert not endpoint.sessions
    assert [d[0].station_id for d in recorder.disconnected] == ["CP-1"]
    assert await endpoint.registry.count() == 0


async def test_close_refuses_new_stations_with_503_while_draining() -> None:
    """During close(), a station connecting gets 503; the one in a CALL gets its answer."""
    started, release = asyncio.Event(), asyncio.Event()

    class Slow(Csms):
        @on("Authorize")
        async def authorize(self, request: Any) -> dict[str, Any]:
            started.set()
            await release.wait()
            return {"idTagInfo": {"status": "Accepted"}}

    endpoint = ocpp_endpoint(Slow)
    async with (
        running("uvicorn", endpoint) as server,
        connect_scripted(f"ws://{HOST}:{server.port}", "CP-1", "ocpp1.6") as peer,
    ):
        await peer.send([2, "slow", "Authorize", {"idTag": "t"}])
        await asyncio.wait_for(started.wait(), TIMEOUT)
        closing = asyncio.create_task(endpoint.close(grace=TIMEOUT))
        await asyncio.sleep(0.05)
        response = await raw_request(server.port, "/CP-2", protocols="ocpp1.6")
        assert response.status == 503
        release.set()
        assert await peer.recv() == [3, "slow", {"idTagInfo": {"status": "Accepted"}}]
        assert await peer.closed_with() == (1001, "server shutting down")
        await asyncio.wait_for(closing, TIMEOUT)


async def test_start_twice_is_a_usage_error() -> None:
    """An endpoint starts once."""
    endpoint = ocpp_endpoint(Csms)
    async with endpoint:
        with pytest.raises(UsageError):
            await endpoint.start()
    await endpoint.close()  # idempotent


def test_inconsistent_versions_are_refused() -> None:
    """The same checks as serve(): a preferred version needs a factory; some factory."""
    with pytest.raises(UsageError, match=r"2\.1"):
        ocpp_endpoint({"1.6": Csms}, versions=["2.1", "1.6"])
    with pytest.raises(UsageError):
        ocpp_endpoint({})


# -- refusals, pings, limits -------------------------------------------------------------


def without_response_extension(app: Any) -> Any:
    """``app`` under a server that lacks the websocket.http.response extension."""

    async def stripped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope = dict(scope, extensions={})
        await app(scope, receive, send)

    return stripped


async def test_refusal_without_the_response_extension_closes_before_accept() -> None:
    """Where the server cannot send our status, the refusal is a close before accept (403)."""
    endpoint = ocpp_endpoint(Csms, max_connections=0)
    async with running("uvicorn", endpoint, without_response_extension(endpoint)) as server:
        response = await raw_request(server.port, "/CP-1", protocols="ocpp1.6")
        assert response.status == 403
    endpoint = ocpp_endpoint(Csms, max_connections=0)
    async with running("uvicorn", endpoint) as server:
        response = await raw_request(server.port, "/CP-1", protocols="ocpp1.6")
        assert (response.status, response.body) == (503, b"too many connections\n")


async def test_uvicorn_drops_a_station_that_stops_answering_pings() -> None:
    """Keepalive is the server's: uvicorn's ws_ping_interval/timeout drop a mute station."""
    recorder = Recorder()
    endpoint = ocpp_endpoint(Csms, on_disconnect=recorder.on_disconnect)
    async with running("uvicorn", endpoint, ping_interval=0.1, ping_timeout=0.1) as server:
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
            assert opcode == 0x9  # a ping, never answered
            await wait_until(lambda: bool(recorder.disconnected), TIMEOUT)
            ((session, code, _),) = recorder.disconnected
            assert session.station_id == "mute"
            assert code in (1005, 1006, 1011)  # uvicorn reports the lost connection as 1005
            assert not endpoint.sessions
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@BOTH
async def test_non_ascii_frame_over_the_limit_in_bytes_closes_1009(kind: str) -> None:
    """The limit counts UTF-8 bytes: 400 'é' (800 bytes) pass 1,024 chars but not 700 bytes."""
    endpoint = ocpp_endpoint(Csms, max_message_size=700)
    async with (
        running(kind, endpoint) as server,
        connect(
            f"ws://{HOST}:{server.port}/CP-1",
            subprotocols=[Subprotocol("ocpp1.6")],
            compression=None,
        ) as ws,
    ):
        assert await heartbeat(ws) == [3, "hb-1", {"currentTime": NOW}]
        await ws.send(json.dumps([2, "x", "Heartbeat", {"pad": "é" * 400}], ensure_ascii=False))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_size_check_counts_bytes_only_where_it_matters() -> None:
    assert not _too_big("a" * 100, 100)
    assert _too_big("a" * 101, 100)
    assert _too_big("é" * 60, 100)  # 120 bytes
    assert not _too_big("é" * 20, 100)
    assert _too_big(b"x" * 101, 100)


async def test_transport_is_a_transport_and_reports_the_close_it_sent() -> None:
    """AsgiTransport is a Transport; after close(), send and recv raise with our code."""
    from csms_kit.exceptions import TransportClosed

    sent: list[dict[str, Any]] = []
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(message: Any) -> None:
        sent.append(message)

    transport = AsgiTransport(inbox.get, send, remote_address=None)
    assert isinstance(transport, Transport)
    await transport.close(1008, "bye")
    await transport.close(1000, "again")  # idempotent: one close frame
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "bye"}]
    with pytest.raises(TransportClosed) as closed:
        await transport.send("x")
    assert (closed.value.code, closed.value.reason) == (1008, "bye")
    inbox.put_nowait({"type": "websocket.receive", "text": "late"})  # ignored while closing
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1008})
    with pytest.raises(TransportClosed):
        await transport.recv()


# -- an independent station: the ocpp package's ChargePoint -------------------------------


class Station16(ChargePoint16):  # type: ignore[misc]
    @station_on("Reset")
    def on_reset(self, type: str, **kwargs: Any) -> Any:
        return result16.Reset(status="Accepted")


class Booting(StationSession):
    @on("BootNotification")
    def boot(self, request: Any) -> dict[str, Any]:
        return {"currentTime": NOW, "interval": 300, "status": "Accepted"}


@BOTH
async def test_ocpp_chargepoint_boots_and_is_called_through_the_mounted_endpoint(
    kind: str,
) -> None:
    """The ocpp package's ChargePoint boots over the FastAPI-mounted endpoint and answers a
    Reset sent through ``endpoint.registry``."""
    endpoint = ocpp_endpoint(Booting)
    async with (
        running(kind, endpoint, fastapi_app(endpoint)) as server,
        websockets.connect(
            f"ws://{HOST}:{server.port}/ocpp/CP-9", subprotocols=[Subprotocol("ocpp1.6")]
        ) as ws,
    ):
        assert ws.subprotocol == "ocpp1.6"
        charge_point = Station16("CP-9", ws)
        reader = asyncio.create_task(charge_point.start())
        try:
            boot = await charge_point.call(
                call16.BootNotification(charge_point_model="M", charge_point_vendor="V")
            )
            assert boot.status == "Accepted"
            answer = await endpoint.registry.call("CP-9", call16.Reset(type="Soft"))
            assert answer == result16.Reset(status="Accepted")
        finally:
            await ws.close()
            with contextlib.suppress(websockets.ConnectionClosed):
                await reader


# -- calls from threads --------------------------------------------------------------------


@BOTH
async def test_call_from_thread_gets_the_answer_or_the_typed_error(kind: str) -> None:
    """A plain thread calls a station on the ASGI endpoint: answer, CallError from the
    station, StationNotConnected; the loop keeps serving while the thread waits."""
    endpoint = ocpp_endpoint(Csms)
    results: dict[str, Any] = {}

    def sync_view() -> None:  # what a Flask or Django view would do
        registry = endpoint.registry
        results["answer"] = registry.call_from_thread("CP-1", call16.ClearCache())
        for name, request in (("error", call16.Reset(type="Hard")), ("absent", None)):
            try:
                registry.call_from_thread(
                    "CP-1" if request is not None else "nobody",
                    request if request is not None else call16.ClearCache(),
                )
            except Exception as exc:
                results[name] = exc

    async with (
        running(kind, endpoint) as server,
        connect_scripted(f"ws://{HOST}:{server.port}", "CP-1", "ocpp1.6") as peer,
        connect_scripted(f"ws://{HOST}:{server.port}", "CP-2", "ocpp1.6") as other,
    ):
        await endpoint.registry.wait_connected("CP-1", TIMEOUT)
        thread = threading.Thread(target=sync_view)
        thread.start()
        try:
            frame = await peer.recv()
            assert frame[2] == "ClearCache"
            # The thread waits for the answer; the loop still serves other stations.
            assert await other.call("hb", "Heartbeat", {}) == [3, "hb", {"currentTime": NOW}]
            await peer.send([3, frame[1], {"status": "Accepted"}])
            frame = await peer.recv()
            assert frame[2] == "Reset"
            await peer.send([4, frame[1], "NotSupported", "no resets here", {}])
        finally:
            await asyncio.to_thread(thread.join, TIMEOUT)
        assert not thread.is_alive()
    assert results["answer"] == result16.ClearCache(status="Accepted")
    assert isinstance(results["error"], CallError)
    assert results["error"].code == "NotSupported"
    assert isinstance(results["absent"], StationNotConnected)
