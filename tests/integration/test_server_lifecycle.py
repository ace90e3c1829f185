"""The server's sessions over real loopback WebSockets: hooks, boot gate, shutdown, registry.

Stations are played by scripted stations (:mod:`csms_kit.testing`) sending hand-written
OCPP-J frames, or by csms_kit's own :class:`~csms_kit.client.StationClient`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201 import datatypes as types201
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from csms_kit import (
    CsmsServer,
    InMemoryRegistry,
    SessionClosed,
    StationNotConnected,
    StationSession,
    UsageError,
    connect_station,
    on,
    serve,
)
from csms_kit.testing import ScriptedStation, connect_scripted
from tests.helpers import wait_until

HOST = "127.0.0.1"
NOW = "2026-11-27T10:00:00Z"
TIMEOUT = 2.0
HEARTBEAT_ANSWER = {"currentTime": NOW}


def start(sessions: Any, **options: Any) -> CsmsServer:
    """A server on a free loopback port, with short timeouts for tests."""
    options.setdefault("ping_interval", None)
    options.setdefault("close_timeout", 1)
    options.setdefault("open_timeout", TIMEOUT)
    return serve(sessions, HOST, 0, **options)


def station(
    server: CsmsServer, station_id: str = "CP-1", version: str = "ocpp1.6"
) -> contextlib.AbstractAsyncContextManager[ScriptedStation]:
    """A scripted station connected to ``server`` as ``station_id``, offering ``version``."""
    return connect_scripted(
        f"ws://{HOST}:{server.port}", station_id, version, timeout=TIMEOUT, open_timeout=TIMEOUT
    )


async def eventually(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait until ``predicate()`` is true; fail after ``timeout`` seconds."""
    await wait_until(predicate, timeout)


def both_kinds(func: Callable[..., Any], asynchronous: bool) -> Callable[..., Any]:
    """``func`` itself, or a coroutine function doing the same after yielding once."""
    if not asynchronous:
        return func

    async def hook(*args: Any) -> Any:
        await asyncio.sleep(0)
        return func(*args)

    return hook


KINDS = pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])


class Csms(StationSession):
    """Heartbeat in every version, a failing action, a slow one; boot gate off."""

    boot_gate = False

    @on("Heartbeat")
    def heartbeat(self, request: Any) -> dict[str, Any]:
        return HEARTBEAT_ANSWER

    @on("DataTransfer")
    def data_transfer(self, request: Any) -> dict[str, Any]:
        raise RuntimeError("handler exploded")


# -- lifecycle hooks ----------------------------------------------------------------------


@KINDS
async def test_on_connect_and_on_disconnect_with_station_close_frame(asynchronous: bool) -> None:
    """on_connect comes first; on_disconnect gets the code and reason the station sent."""
    events: list[tuple[Any, ...]] = []

    def on_connect(session: StationSession) -> None:
        events.append(("connect", session))

    def on_disconnect(session: StationSession, code: int | None, reason: str) -> None:
        events.append(("disconnect", session, code, reason))

    def on_message(session: StationSession, direction: str, text: str | bytes) -> None:
        events.append(("message", session, direction))

    async with start(
        Csms,
        on_connect=both_kinds(on_connect, asynchronous),
        on_disconnect=both_kinds(on_disconnect, asynchronous),
        on_message=both_kinds(on_message, asynchronous),
    ) as server:
        async with station(server, "CP-1") as peer:
            assert await peer.call("1", "Heartbeat", {}) == [3, "1", HEARTBEAT_ANSWER]
            session = server.registry.local_session("CP-1")
            assert session is not None
            await peer.close(4000, "going to sleep")
        await eventually(lambda: len(events) == 4)
        assert events == [
            ("connect", session),
            ("message", session, "in"),
            ("message", session, "out"),
            ("disconnect", session, 4000, "going to sleep"),
        ]
        assert session.ended
        assert not await server.registry.is_connected("CP-1")


async def test_on_disconnect_for_a_replaced_connection() -> None:
    """A replaced connection is closed with 1000 and a 'replaced' reason; on_disconnect says so."""
    disconnected: list[tuple[StationSession, int | None, str]] = []
    connected: list[StationSession] = []
    async with start(
        Csms,
        on_connect=connected.append,
        on_disconnect=lambda s, code, reason: disconnected.append((s, code, reason)),
    ) as server:
        async with station(server, "CP-1") as old:
            assert await old.call("1", "Heartbeat", {}) == [3, "1", HEARTBEAT_ANSWER]
            async with station(server, "CP-1") as new:
                code, reason = await old.closed_with()
                assert code == 1000 and reason.startswith("replaced")
                await eventually(lambda: len(disconnected) == 1)
                first, second = connected
                assert disconnected == [(first, 1000, reason)]
                assert server.registry.local_session("CP-1") is second
                assert await new.call("2", "Heartbeat", {}) == [3, "2", HEARTBEAT_ANSWER]
        await eventually(lambda: len(disconnected) == 2)
        assert disconnected[1][0] is second and disconnected[1][1] == 1000


@KINDS
async def test_on_message_sees_every_frame_both_ways(asynchronous: bool) -> None:
    """on_message gets each frame in and out, in order, as the exact text on the wire."""
    seen: list[tuple[StationSession, str, str | bytes]] = []
    hook = both_kinds(lambda s, direction, text: seen.append((s, direction, text)), asynchronous)
    async with start(Csms, on_message=hook) as server, station(server) as peer:
        assert await peer.call("hb-1", "Heartbeat", {}) == [3, "hb-1", HEARTBEAT_ANSWER]
        # a CALL of the CSMS, answered by the station
        calling = asyncio.create_task(server.registry.call("CP-1", call16.ClearCache()))
        outgoing = await peer.recv()
        assert outgoing[2] == "ClearCache"
        await peer.send([3, outgoing[1], {"status": "Accepted"}])
        assert (await calling).status == "Accepted"
        # a bad frame and its CALLERROR
        await peer.send("not json")
        assert (await peer.recv())[:3] == [4, "-1", "FormationViolation"]
        session = server.registry.local_session("CP-1")
        assert [(d, t) for _, d, t in seen] == peer.wire
        assert len(peer.wire) == 6
        assert all(s is session for s, _, _ in seen)


async def test_binary_frame_closes_with_1003_and_is_seen_by_on_message() -> None:
    """A binary frame reaches on_message as bytes; the server closes with 1003."""
    seen: list[tuple[str, str | bytes]] = []
    disconnected: list[int | None] = []
    async with start(
        Csms,
        on_message=lambda s, direction, data: seen.append((direction, data)),
        on_disconnect=lambda s, code, reason: disconnected.append(code),
    ) as server:
        async with station(server) as peer:
            await peer.send(b'[2,"1","Heartbeat",{}]')
            assert (await peer.closed_with())[0] == 1003
        await eventually(lambda: bool(disconnected))
        assert seen == [("in", b'[2,"1","Heartbeat",{}]')]
        assert disconnected == [1003]


async def test_on_disconnect_without_close_frame_gets_1006() -> None:
    """A station whose TCP connection just drops is reported with 1006."""
    disconnected: list[tuple[int | None, str]] = []
    async with start(Csms, on_disconnect=lambda s, c, r: disconnected.append((c, r))) as server:
        async with station(server) as peer:
            assert await peer.call("1", "Heartbeat", {}) == [3, "1", HEARTBEAT_ANSWER]
            peer.connection.transport.abort()
        await eventually(lambda: bool(disconnected))
        assert disconnected == [(1006, "")]
        assert not await server.registry.is_connected("CP-1")


@KINDS
async def test_on_error_sees_a_handler_exception(asynchronous: bool) -> None:
    """A handler's exception reaches on_error; the station gets InternalError."""
    errors: list[tuple[StationSession | None, BaseException]] = []
    hook = both_kinds(lambda s, exc: errors.append((s, exc)), asynchronous)
    async with start(Csms, on_error=hook) as server, station(server) as peer:
        answer = await peer.call("dt-1", "DataTransfer", {"vendorId": "ACME"})
        assert answer[:3] == [4, "dt-1", "InternalError"]
        assert "exploded" not in json.dumps(answer)  # no internals leak to the station
        ((session, error),) = errors
        assert session is server.registry.local_session("CP-1")
        assert isinstance(error, RuntimeError) and str(error) == "handler exploded"
        assert await peer.call("hb-1", "Heartbeat", {}) == [3, "hb-1", HEARTBEAT_ANSWER]


@KINDS
async def test_failing_hooks_are_logged_and_harmless(
    asynchronous: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Hooks that raise are logged; the connection and the server go on."""
    calls: list[str] = []

    def failing(name: str) -> Callable[..., Any]:
        def hook(*args: Any) -> None:
            calls.append(name)
            raise ValueError(f"{name} hook is broken")

        return both_kinds(hook, asynchronous)

    caplog.set_level(logging.ERROR, "csms_kit")
    async with start(
        Csms,
        on_connect=failing("on_connect"),
        on_disconnect=failing("on_disconnect"),
        on_message=failing("on_message"),
        on_error=failing("on_error"),
    ) as server:
        async with station(server, "A") as peer:
            assert await peer.call("1", "Heartbeat", {}) == [3, "1", HEARTBEAT_ANSWER]
            answer = await peer.call("2", "DataTransfer", {"vendorId": "ACME"})
            assert answer[:3] == [4, "2", "InternalError"]
            assert await peer.call("3", "Heartbeat", {}) == [3, "3", HEARTBEAT_ANSWER]
        await eventually(lambda: "on_disconnect" in calls)
        async with station(server, "B") as peer:
            assert await peer.call("1", "Heartbeat", {}) == [3, "1", HEARTBEAT_ANSWER]
    assert {"on_connect", "on_disconnect", "on_message", "on_error"} <= set(calls)
    logged = {
        str(r.exc_info[1]).split()[0]
        for r in caplog.records
        if r.exc_info and isinstance(r.exc_info[1], ValueError)
    }
    assert logged == {"on_connect", "on_disconnect", "on_message", "on_error"}


# -- the boot gate ------------------------------------------------------------------------


def boot_payload(version: str, status: str) -> dict[str, Any]:
    """A BootNotification whose model names the status the CSMS should answer."""
    if version == "ocpp1.6":
        return {"chargePointVendor": "ACME", "chargePointModel": status}
    return {"chargingStation": {"vendorName": "ACME", "model": status}, "reason": "PowerUp"}


class Gated(StationSession):
    """Boot gate on (the default); answers BootNotification with the status the model names."""

    @on("BootNotification")
    def boot(self, request: Any) -> dict[str, Any]:
        model = getattr(request, "charge_point_model", None)
        if model is None:
            model = request.charging_station.model
        return {"currentTime": NOW, "interval": 60, "status": model}

    @on("Heartbeat")
    def heartbeat(self, request: Any) -> dict[str, Any]:
        return HEARTBEAT_ANSWER


async def collect(peer: ScriptedStation, count: int) -> list[list[Any]]:
    """The next ``count`` frames, whatever their order."""
    return [await peer.recv() for _ in range(count)]


def is_security_error(frame: list[Any], message_id: str) -> bool:
    return frame[:3] == [4, message_id, "SecurityError"]


@pytest.mark.parametrize("version", ["ocpp1.6", "ocpp2.0.1", "ocpp2.1"])
async def test_boot_gate_until_accepted(version: str) -> None:
    """Before an Accepted boot: SecurityError, one TriggerMessage; after it: handled."""
    async with start(Gated) as server, station(server, version=version) as peer:
        await peer.send([2, "hb-1", "Heartbeat", {}])
        frames = await collect(peer, 2)
        (error,) = [f for f in frames if f[0] == 4]
        (trigger,) = [f for f in frames if f[0] == 2]
        assert is_security_error(error, "hb-1")
        assert trigger[2:] == ["TriggerMessage", {"requestedMessage": "BootNotification"}]
        await peer.send([3, trigger[1], {"status": "Accepted"}])

        # refused again, but asked only once
        assert is_security_error(await peer.call("hb-2", "Heartbeat", {}), "hb-2")
        assert await peer.nothing_more()

        boot = await peer.call("boot-1", "BootNotification", boot_payload(version, "Accepted"))
        assert boot == [3, "boot-1", {"currentTime": NOW, "interval": 60, "status": "Accepted"}]
        assert await peer.call("hb-3", "Heartbeat", {}) == [3, "hb-3", HEARTBEAT_ANSWER]
        session = server.registry.local_session("CP-1")
        assert session is not None and session.booted
        assert await server.registry.registration_status("CP-1") == "Accepted"


async def test_boot_gate_pending_still_refuses() -> None:
    """A Pending boot leaves the gate shut: SecurityError, and no TriggerMessage."""
    async with start(Gated) as server, station(server) as peer:
        boot = await peer.call("b-1", "BootNotification", boot_payload("ocpp1.6", "Pending"))
        assert boot[2]["status"] == "Pending"
        assert is_security_error(await peer.call("hb-1", "Heartbeat", {}), "hb-1")
        assert await peer.nothing_more()
        session = server.registry.local_session("CP-1")
        assert session is not None and not session.booted
        assert session.registration_status == "Pending"
        # a later Accepted boot opens it
        await peer.call("b-2", "BootNotification", boot_payload("ocpp1.6", "Accepted"))
        assert await peer.call("hb-2", "Heartbeat", {}) == [3, "hb-2", HEARTBEAT_ANSWER]


async def test_unanswered_trigger_does_not_hold_the_session() -> None:
    """A station that ignores the TriggerMessage and leaves is let go at once."""
    async with start(Gated) as server:
        async with station(server) as peer:
            await peer.send([2, "hb-1", "Heartbeat", {}])
            frames = await collect(peer, 2)
            assert any(f[0] == 2 and f[2] == "TriggerMessage" for f in frames)
        await eventually(lambda: not server.sessions, timeout=1.0)


async def test_boot_status_remembered_across_reconnects() -> None:
    """A station that booted Accepted and reconnects without booting again is let through."""
    async with start(Gated) as server:
        async with station(server) as peer:
            await peer.call("b-1", "BootNotification", boot_payload("ocpp1.6", "Accepted"))
        await eventually(lambda: not server.sessions)
        async with station(server) as peer:
            assert await peer.call("hb-1", "Heartbeat", {}) == [3, "hb-1", HEARTBEAT_ANSWER]
            assert await peer.nothing_more(), "no TriggerMessage for a known station"
            session = server.registry.local_session("CP-1")
            assert session is not None and session.booted
        # another station is still gated
        async with station(server, "CP-2") as other:
            await other.send([2, "hb-1", "Heartbeat", {}])
            frames = await collect(other, 2)
            assert any(is_security_error(f, "hb-1") for f in frames)


async def test_boot_status_pending_remembered_across_reconnects() -> None:
    """A station left Pending stays gated after reconnecting, and is not triggered again."""
    async with start(Gated) as server:
        async with station(server) as peer:
            await peer.call("b-1", "BootNotification", boot_payload("ocpp1.6", "Pending"))
        await eventually(lambda: not server.sessions)
        async with station(server) as peer:
            assert is_security_error(await peer.call("hb-1", "Heartbeat", {}), "hb-1")
            assert await peer.nothing_more()


async def test_rejected_station_cannot_be_called() -> None:
    """After a Rejected boot, ``session.call()`` and ``registry.call()`` raise UsageError."""
    async with start(Gated) as server, station(server) as peer:
        boot = await peer.call("b-1", "BootNotification", boot_payload("ocpp1.6", "Rejected"))
        assert boot[2]["status"] == "Rejected"
        session = server.registry.local_session("CP-1")
        assert session is not None and session.registration_status == "Rejected"
        with pytest.raises(UsageError, match="Rejected"):
            await session.call(call16.ClearCache())
        with pytest.raises(UsageError, match="Rejected"):
            await server.registry.call("CP-1", call16.ClearCache())
        assert is_security_error(await peer.call("hb-1", "Heartbeat", {}), "hb-1")
        assert await peer.nothing_more(), "nothing may be sent to a Rejected station"


async def test_boot_gate_off() -> None:
    """``boot_gate = False`` handles every CALL at once and never sends TriggerMessage."""

    class Ungated(Gated):
        boot_gate = False

    async with start(Ungated) as server, station(server) as peer:
        assert await peer.call("hb-1", "Heartbeat", {}) == [3, "hb-1", HEARTBEAT_ANSWER]
        assert await peer.nothing_more()
        await peer.call("b-1", "BootNotification", boot_payload("ocpp1.6", "Rejected"))
        assert await peer.call("hb-2", "Heartbeat", {}) == [3, "hb-2", HEARTBEAT_ANSWER]
        session = server.registry.local_session("CP-1")
        assert session is not None
        calling = asyncio.create_task(session.call(call16.ClearCache()))
        outgoing = await peer.recv()
        await peer.send([3, outgoing[1], {"status": "Accepted"}])
        assert (await calling).status == "Accepted"


async def test_trigger_boot_off() -> None:
    """``trigger_boot = False`` keeps the gate but sends no TriggerMessage."""

    class Quiet(Gated):
        trigger_boot = False

    async with start(Quiet) as server, station(server) as peer:
        assert is_security_error(await peer.call("hb-1", "Heartbeat", {}), "hb-1")
        assert await peer.nothing_more()


# -- graceful shutdown --------------------------------------------------------------------


class Slow(StationSession):
    """A Heartbeat that takes 0.3 s; ``state["started"]`` (an Event) is set when it begins."""

    boot_gate = False

    @on("Heartbeat")
    async def heartbeat(self, request: Any) -> dict[str, Any]:
        started = self.state.get("started")
        if started is not None:
            started.set()
        await asyncio.sleep(0.3)
        return HEARTBEAT_ANSWER


def slow_server(started: asyncio.Event, **options: Any) -> CsmsServer:
    return start(Slow, on_connect=lambda s: s.state.update(started=started), **options)


@pytest.mark.parametrize(
    ("restart", "code", "reason"),
    [(False, 1001, "server shutting down"), (True, 1012, "server restarting")],
)
async def test_shutdown_answers_calls_in_flight(restart: bool, code: int, reason: str) -> None:
    """A CALL being handled when close() starts is answered before the close frame."""
    started = asyncio.Event()
    disconnected: list[tuple[int | None, str]] = []
    async with slow_server(
        started, on_disconnect=lambda s, c, r: disconnected.append((c, r))
    ) as server:
        async with station(server) as peer:
            await peer.send([2, "slow-1", "Heartbeat", {}])
            await asyncio.wait_for(started.wait(), TIMEOUT)
            closing = asyncio.create_task(server.close(restart=restart))
            assert await peer.recv() == [3, "slow-1", HEARTBEAT_ANSWER]
            assert await peer.closed_with() == (code, reason)
            await asyncio.wait_for(closing, TIMEOUT)
        assert not server.sessions
        assert not await server.registry.is_connected("CP-1")
        assert disconnected == [(code, reason)]


async def test_shutdown_answers_calls_queued_behind_the_slow_one() -> None:
    """CALLs already received when close() starts are answered too, in order."""
    started = asyncio.Event()
    async with slow_server(started) as server, station(server) as peer:
        await peer.send([2, "slow-1", "Heartbeat", {}])
        await asyncio.wait_for(started.wait(), TIMEOUT)
        await peer.send([2, "slow-2", "Heartbeat", {}])
        await asyncio.sleep(0.05)  # let the server read it
        closing = asyncio.create_task(server.close())
        assert await peer.recv() == [3, "slow-1", HEARTBEAT_ANSWER]
        assert await peer.recv() == [3, "slow-2", HEARTBEAT_ANSWER]
        assert (await peer.closed_with())[0] == 1001
        await asyncio.wait_for(closing, TIMEOUT)


async def test_shutdown_grace_bounds_the_wait() -> None:
    """close(grace=...) does not wait longer than the grace for a handler."""
    started = asyncio.Event()
    async with slow_server(started) as server, station(server) as peer:
        await peer.send([2, "slow-1", "Heartbeat", {}])
        await asyncio.wait_for(started.wait(), TIMEOUT)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(server.close(grace=0.05), TIMEOUT)
        assert loop.time() - began < 1.0
        code, _ = await peer.closed_with()
        assert code == 1001


async def test_new_connections_refused_during_shutdown() -> None:
    """While the server shuts down it accepts no new TCP connection and answers 503."""
    started = asyncio.Event()
    async with slow_server(started) as server:
        port = server.port
        early_reader, early_writer = await asyncio.open_connection(HOST, port)
        try:
            await asyncio.sleep(0.05)  # let the server accept the TCP connection
            async with station(server) as peer:
                await peer.send([2, "slow-1", "Heartbeat", {}])
                await asyncio.wait_for(started.wait(), TIMEOUT)
                closing = asyncio.create_task(server.close())
                await asyncio.sleep(0.05)
                assert not closing.done(), "the slow handler should keep the shutdown going"
                with pytest.raises(OSError):
                    await connect(
                        f"ws://{HOST}:{port}/CP-2",
                        subprotocols=[Subprotocol("ocpp1.6")],
                        open_timeout=TIMEOUT,
                    )
                # a connection accepted before the shutdown but not yet upgraded: 503
                early_writer.write(
                    (
                        "GET /CP-3 HTTP/1.1\r\n"
                        f"Host: {HOST}:{port}\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n"
                        "Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
                    ).encode()
                )
                status = await asyncio.wait_for(early_reader.readline(), TIMEOUT)
                assert status.startswith(b"HTTP/1.1 503 ")
                early_writer.close()
                assert await peer.recv() == [3, "slow-1", HEARTBEAT_ANSWER]
                assert (await peer.closed_with())[0] == 1001
                await asyncio.wait_for(closing, TIMEOUT)
        finally:
            early_writer.close()
            with contextlib.suppress(OSError):
                await early_writer.wait_closed()


async def test_shutdown_fails_outgoing_calls_at_once() -> None:
    """A CSMS call waiting for the station's answer fails with SessionClosed on shutdown."""
    async with start(Csms) as server, station(server) as peer:
        calling = asyncio.create_task(server.registry.call("CP-1", call16.ClearCache()))
        assert (await peer.recv())[2] == "ClearCache"  # never answered
        await asyncio.wait_for(server.close(), TIMEOUT)
        with pytest.raises(SessionClosed) as closed:
            await asyncio.wait_for(calling, TIMEOUT)
        assert closed.value.code == 1001
        assert (await peer.closed_with())[0] == 1001


async def test_close_is_idempotent() -> None:
    """close() may be called again, even concurrently; the station sees one close frame."""
    server = start(Csms)
    await server.close()  # never started: nothing to do
    await server.start()
    try:
        async with station(server) as peer:
            assert await peer.call("1", "Heartbeat", {}) == [3, "1", HEARTBEAT_ANSWER]
            await asyncio.wait_for(asyncio.gather(server.close(), server.close()), TIMEOUT)
            assert await peer.closed_with() == (1001, "server shutting down")
        await asyncio.wait_for(server.close(), TIMEOUT)
        await asyncio.wait_for(server.close(restart=True), TIMEOUT)
        assert server.sockets == ()
        with pytest.raises(UsageError):
            await server.start()
    finally:
        await server.close()


async def test_leaving_async_with_closes() -> None:
    """Leaving ``async with`` closes every connection with 1001 and stops listening."""
    async with start(Csms) as server:
        port = server.port
        ws = await connect(
            f"ws://{HOST}:{port}/CP-1", subprotocols=[Subprotocol("ocpp1.6")], ping_interval=None
        )
        peer = ScriptedStation(ws, timeout=TIMEOUT)
        try:
            assert await peer.call("1", "Heartbeat", {}) == [3, "1", HEARTBEAT_ANSWER]
        except BaseException:
            await ws.close()
            raise
    try:
        assert await peer.closed_with() == (1001, "server shutting down")
        assert not server.sessions and server.sockets == ()
        with pytest.raises(UsageError):
            _ = server.port
        with pytest.raises(OSError):
            await connect(f"ws://{HOST}:{port}/CP-2", open_timeout=TIMEOUT)
    finally:
        await ws.close()


async def test_serve_forever_returns_after_close() -> None:
    """serve_forever() starts the server and returns once another task calls close()."""
    server = start(Csms)
    forever = asyncio.create_task(server.serve_forever())
    try:
        await eventually(lambda: bool(server.sockets))
        async with station(server) as peer:
            assert await peer.call("1", "Heartbeat", {}) == [3, "1", HEARTBEAT_ANSWER]
            assert not forever.done()
            await asyncio.wait_for(server.close(), TIMEOUT)
            assert (await peer.closed_with())[0] == 1001
        assert await asyncio.wait_for(forever, TIMEOUT) is None
    finally:
        forever.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await forever
        await server.close()


async def test_serve_forever_closes_when_cancelled() -> None:
    """Cancelling serve_forever() shuts the server down gracefully, then re-raises."""
    started = asyncio.Event()
    server = slow_server(started)
    forever = asyncio.create_task(server.serve_forever())
    try:
        await eventually(lambda: bool(server.sockets))
        port = server.port
        async with station(server) as peer:
            await peer.send([2, "slow-1", "Heartbeat", {}])
            await asyncio.wait_for(started.wait(), TIMEOUT)
            forever.cancel()
            assert await peer.recv() == [3, "slow-1", HEARTBEAT_ANSWER]
            assert (await peer.closed_with())[0] == 1001
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(forever, TIMEOUT)
        assert not server.sessions and server.sockets == ()
        with pytest.raises(OSError):
            await connect(f"ws://{HOST}:{port}/CP-2", open_timeout=TIMEOUT)
    finally:
        forever.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await forever
        await server.close()


# -- calling stations through the registry ------------------------------------------------


class Csms201(StationSession):
    """Nothing but the defaults (boot gate on): the CSMS only calls out here."""


async def test_registry_call_reaches_a_16_station() -> None:
    """registry.call() from outside any handler reaches the station; the answer is typed."""
    async with (
        start(Csms) as server,
        connect_station(f"ws://{HOST}:{server.port}", "CP 1", "1.6", ping_interval=None),
    ):
        await server.registry.wait_connected("CP 1", TIMEOUT)
        answer = await server.registry.call(
            "CP 1", call16.RemoteStartTransaction(id_tag="TAG-1", connector_id=1)
        )
        assert isinstance(answer, result16.RemoteStartTransaction)
        assert answer.status == "Accepted"


async def test_registry_call_reaches_a_201_station_without_boot() -> None:
    """A station that has not booted can still be called by the CSMS (the gate is one-way)."""
    async with (
        start(Csms201) as server,
        connect_station(f"ws://{HOST}:{server.port}", "CP-2", "2.0.1", ping_interval=None),
    ):
        await server.registry.wait_connected("CP-2", TIMEOUT)
        request = call201.RequestStartTransaction(
            id_token=types201.IdTokenType(id_token="TAG-1", type="ISO14443"),
            remote_start_id=5,
        )
        answers = await asyncio.gather(
            server.registry.call("CP-2", request),
            server.registry.call("CP-2", request, timeout=TIMEOUT),
        )
        for answer in answers:
            assert isinstance(answer, result201.RequestStartTransaction)
            assert answer.status == "Accepted"


async def test_registry_call_unknown_station() -> None:
    """Calling a station that never connected raises StationNotConnected."""
    async with start(Csms) as server:
        with pytest.raises(StationNotConnected) as missing:
            await server.registry.call("nobody", call16.ClearCache())
        assert missing.value.station_id == "nobody"


async def test_registry_call_after_station_left() -> None:
    """Once the station has left, calling it raises StationNotConnected."""
    registry = InMemoryRegistry()
    left = asyncio.Event()
    async with start(Csms, registry=registry, on_disconnect=lambda *_: left.set()) as server:
        async with connect_station(f"ws://{HOST}:{server.port}", "CP-1", ping_interval=None):
            await registry.wait_connected("CP-1", TIMEOUT)
            answer = await registry.call("CP-1", call16.ClearCache())
            assert answer.status == "Accepted"
        await asyncio.wait_for(left.wait(), TIMEOUT)
        assert "CP-1" not in registry
        with pytest.raises(StationNotConnected):
            await registry.call("CP-1", call16.ClearCache())
