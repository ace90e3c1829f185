"""Keepalive pings from one task per server, over real loopback WebSockets.

The 1011 close of a station that stops answering is tested with the server's other
limits (``test_server_handshake.py``, ``tests/robustness``); here: that pings flow,
spread over time, stop with the connection, and that ``ping_timeout=None`` and
``ping_interval=None`` do what they say.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.protocol import State

from csms_kit.keepalive import Keepalive
from tests.integration.test_server_handshake import (
    HOST,
    KEY,
    eventually,
    heartbeat,
    read_frame,
    start,
    station,
)

PING = 0x9


@contextlib.asynccontextmanager
async def mute_station(port: int, path: str = "/mute") -> AsyncIterator[asyncio.StreamReader]:
    """A station that completes the handshake, then never answers anything."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert head.startswith(b"HTTP/1.1 101 ")
        yield reader
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_answered_pings_keep_stations_connected_and_measure_latency() -> None:
    async with start(ping_interval=0.2, ping_timeout=0.2) as server:
        async with station(server, "/a") as a, station(server, "/b") as b:
            (session_a,) = [s for s in server.sessions if s.station_id == "a"]
            connection = session_a.transport.connection  # type: ignore[attr-defined]
            await eventually(lambda: connection.latency > 0)  # a pong came back
            await asyncio.sleep(0.8)  # several intervals and timeouts
            assert await heartbeat(a) == [3, "hb-1", {"currentTime": "2026-11-27T10:00:00Z"}]
            assert await heartbeat(b) == [3, "hb-1", {"currentTime": "2026-11-27T10:00:00Z"}]
            assert len(server.sessions) == 2
            assert server._keepalive is not None and len(server._keepalive) == 2
        await eventually(lambda: not server.sessions)
        assert len(server._keepalive) == 0


async def test_without_a_timeout_a_mute_station_gets_one_ping_and_stays() -> None:
    """As with websockets' own keepalive: one unanswered ping at a time, no close."""
    async with (
        start(ping_interval=0.1, ping_timeout=None) as server,
        mute_station(server.port) as reader,
    ):
        opcode, _ = await asyncio.wait_for(read_frame(reader), 2)
        assert opcode == PING
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(read_frame(reader), 0.5)  # five intervals
        assert len(server.sessions) == 1


async def test_pings_follow_the_interval() -> None:
    async with start(ping_interval=0.2, ping_timeout=0.2) as server, station(server, "/a"):
        (session,) = server.sessions
        connection = session.transport.connection  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        pongs: list[float] = []
        latency = connection.latency
        while len(pongs) < 3:
            await eventually(lambda seen=latency: connection.latency != seen)
            latency = connection.latency
            pongs.append(loop.time())
        gaps = [later - earlier for earlier, later in itertools.pairwise(pongs)]
        assert all(0.1 <= gap <= 0.4 for gap in gaps), gaps


async def test_no_pings_without_an_interval() -> None:
    async with start(ping_interval=None) as server:
        assert server._keepalive is None
        async with mute_station(server.port) as reader:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(read_frame(reader), 0.5)
            assert len(server.sessions) == 1


@pytest.mark.parametrize(("interval", "timeout"), [(0, 1.0), (-1, 1.0), (1.0, 0), (1.0, -2)])
def test_interval_and_timeout_must_be_positive(interval: float, timeout: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Keepalive(interval, timeout)


class FakeConnection:
    """Just what Keepalive reads of a connection: state, paused, pending_pings, ping()."""

    def __init__(self, *, paused: bool = False, state: State = State.OPEN) -> None:
        self.paused = paused
        self.state = state
        self.pings = 0
        self.pending_pings: dict[bytes, tuple[Any, float]] = {}
        self.remote_address = ("127.0.0.1", 1)
        self.closed: tuple[int, str] | None = None
        self.close_timeout = 1.0

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    async def ping(self) -> Any:
        self.pings += 1
        loop = asyncio.get_running_loop()
        pong = loop.create_future()
        self.pending_pings[str(self.pings).encode()] = (pong, loop.time())
        return pong


async def test_connections_not_reading_or_closing_are_not_pinged() -> None:
    keepalive = Keepalive(0.05, None)
    reading, stalled, closing = (
        FakeConnection(),
        FakeConnection(paused=True),
        FakeConnection(state=State.CLOSING),
    )
    for connection in (reading, stalled, closing):
        keepalive.add(connection)  # type: ignore[arg-type]
    try:
        await eventually(lambda: reading.pings == 1)
        await asyncio.sleep(0.15)  # more intervals: the first ping is still unanswered
        assert (reading.pings, stalled.pings, closing.pings) == (1, 0, 0)
    finally:
        for connection in (reading, stalled, closing):
            keepalive.discard(connection)  # type: ignore[arg-type]
        await keepalive.stop()
    assert len(keepalive) == 0


async def test_a_connection_not_reading_for_a_whole_interval_is_closed() -> None:
    keepalive = Keepalive(0.05, 1.0)
    deaf, slow = FakeConnection(paused=True), FakeConnection(paused=True)
    for connection in (deaf, slow):
        keepalive.add(connection)  # type: ignore[arg-type]
    try:
        await asyncio.sleep(0.07)  # one turn each: both found not reading
        slow.paused = False  # drains before its next turn
        await eventually(lambda: deaf.closed is not None)
        assert deaf.closed == (1011, "keepalive ping timeout")
        await eventually(lambda: slow.pings == 1)
        assert slow.closed is None
        assert len(keepalive) == 1  # the closed one is no longer pinged
    finally:
        keepalive.discard(slow)  # type: ignore[arg-type]
        await keepalive.stop()


async def test_the_task_runs_only_while_there_are_connections() -> None:
    keepalive = Keepalive(0.05, 1.0)
    first, second = FakeConnection(), FakeConnection()
    keepalive.add(first)  # type: ignore[arg-type]
    task = keepalive._task
    assert task is not None
    keepalive.discard(first)  # type: ignore[arg-type]
    await eventually(task.done)
    assert keepalive._task is None
    keepalive.add(second)  # type: ignore[arg-type]
    try:
        await eventually(lambda: second.pings == 1)  # a new task pings again
    finally:
        keepalive.discard(second)  # type: ignore[arg-type]
        await keepalive.stop()
