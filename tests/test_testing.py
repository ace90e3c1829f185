"""csms_kit.testing: the scripted station, in memory and over loopback WebSockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from ocpp.v16 import call_result
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as websockets_serve

from csms_kit import StationSession, on, serve
from csms_kit.exceptions import TransportClosed
from csms_kit.testing import (
    ScriptedStation,
    connect_scripted,
    memory_transport_pair,
    run_session,
)

NOW = "2026-11-27T10:00:00Z"
HEARTBEAT = '[2, "hb", "Heartbeat", {}]'


class Csms(StationSession):
    """Answers Heartbeat; no boot gate, so a Heartbeat needs no BootNotification first."""

    boot_gate = False

    @on("Heartbeat")
    def heartbeat(self, request: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=NOW)


# -- in memory ------------------------------------------------------------------------------


async def test_run_session_builds_the_session_from_its_arguments() -> None:
    """run_session passes the station id, version and options to the session class."""
    async with run_session(Csms, "2.0.1", "CP-9", remote_address=("10.0.0.9", 1)) as (
        session,
        station,
    ):
        assert isinstance(session, Csms)
        assert isinstance(station, ScriptedStation)
        assert session.station_id == "CP-9"
        assert str(session.version) == "2.0.1"
        assert session.remote_address == ("10.0.0.9", 1)


async def test_run_session_ends_the_session_on_exit() -> None:
    """Leaving the block closes the station's end and waits for the session to end."""
    async with run_session(Csms) as (session, _):
        assert not session.ended
    assert session.ended


async def test_run_session_exits_cleanly_after_the_session_closed() -> None:
    """The block may end after the session has already closed the connection."""
    async with run_session(Csms) as (session, station):
        await session.close(4000, "bye")
        await station.closed_with()
    assert session.ended


async def test_call_returns_the_callresult() -> None:
    """call() sends a CALL and returns the CSMS's answer, decoded."""
    async with run_session(Csms) as (_, station):
        assert await station.call("1", "Heartbeat", {}) == [3, "1", {"currentTime": NOW}]


async def test_send_encodes_lists_and_dicts_and_passes_text_and_bytes_as_they_are() -> None:
    """send() JSON-encodes a list or dict; a str or bytes goes out untouched."""
    csms_side, station_side = memory_transport_pair()
    station = ScriptedStation(station_side)
    await station.send([2, "1", "Heartbeat", {}])
    await station.send({"a": 1})
    await station.send('[2,"2","Heartbeat",{}]')
    await station.send(b'[2,"3","Heartbeat",{}]')
    assert await csms_side.recv() == json.dumps([2, "1", "Heartbeat", {}])
    assert await csms_side.recv() == '{"a": 1}'
    assert await csms_side.recv() == '[2,"2","Heartbeat",{}]'
    assert await csms_side.recv() == b'[2,"3","Heartbeat",{}]'


async def test_a_binary_frame_reaches_the_session() -> None:
    """A binary frame from the station is delivered; the session closes with 1003."""
    async with run_session(Csms) as (session, station):
        await station.send(b'[2,"1","Heartbeat",{}]')
        assert (await station.closed_with())[0] == 1003
    assert session.ended


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        (b'[3,"1",{}]', "expected a text frame"),
        ("not json", "expected a JSON frame"),
        ('{"a": 1}', "expected a JSON array"),
    ],
    ids=["binary", "not-json", "not-an-array"],
)
async def test_recv_fails_on_a_frame_that_is_not_a_json_array(
    message: str | bytes, complaint: str
) -> None:
    """recv() raises AssertionError unless the frame is text holding a JSON array."""
    csms_side, station_side = memory_transport_pair()
    station = ScriptedStation(station_side)
    await csms_side.send(message)
    with pytest.raises(AssertionError, match=complaint):
        await station.recv()


async def test_recv_times_out() -> None:
    """recv() raises TimeoutError when no frame arrives within its timeout."""
    async with run_session(Csms) as (_, station):
        with pytest.raises(asyncio.TimeoutError):
            await station.recv(timeout=0.05)


async def test_recv_lets_the_close_through() -> None:
    """recv() after the CSMS closed raises the transport's TransportClosed."""
    async with run_session(Csms) as (session, station):
        await session.close(4001, "gone")
        with pytest.raises(TransportClosed) as caught:
            await station.recv()
        assert (caught.value.code, caught.value.reason) == (4001, "gone")


async def test_nothing_more_is_true_when_nothing_comes() -> None:
    """nothing_more() is True when the CSMS stays quiet."""
    async with run_session(Csms) as (_, station):
        assert await station.nothing_more(0.05)


async def test_nothing_more_is_false_when_a_frame_comes() -> None:
    """nothing_more() is False when a frame arrives within the wait."""
    async with run_session(Csms) as (_, station):
        await station.send(HEARTBEAT)
        assert not await station.nothing_more(1.0)


async def test_nothing_more_counts_a_close_as_nothing() -> None:
    """nothing_more() is True when the connection closes instead of a frame."""
    async with run_session(Csms) as (session, station):
        await session.close()
        assert await station.nothing_more(1.0)


async def test_closed_with_returns_the_close_code_and_reason() -> None:
    """closed_with() returns the code and reason the session closed with."""
    async with run_session(Csms) as (session, station):
        await session.close(4000, "bye")
        assert await station.closed_with() == (4000, "bye")


async def test_closed_with_fails_if_a_frame_comes_first() -> None:
    """closed_with() raises AssertionError when a frame arrives before any close."""
    async with run_session(Csms) as (_, station):
        await station.send(HEARTBEAT)
        with pytest.raises(AssertionError, match="expected a close"):
            await station.closed_with()


async def test_closed_with_fails_if_nothing_comes() -> None:
    """closed_with() raises AssertionError when no close arrives within its timeout."""
    async with run_session(Csms) as (_, station):
        with pytest.raises(AssertionError, match="no close within"):
            await station.closed_with(timeout=0.05)


async def test_close_sends_the_code_and_reason() -> None:
    """close() closes the connection with the given code and reason."""
    csms_side, station_side = memory_transport_pair()
    await ScriptedStation(station_side).close(4002, "done")
    with pytest.raises(TransportClosed) as caught:
        await csms_side.recv()
    assert (caught.value.code, caught.value.reason) == (4002, "done")


async def test_wire_records_every_frame_in_order() -> None:
    """wire lists the frames sent ("in") and received ("out"), from the CSMS's side."""
    async with run_session(Csms) as (_, station):
        await station.send(HEARTBEAT)
        await station.recv()
        await station.send([2, "2", "Heartbeat", {}])
        assert not await station.nothing_more()
        await station.send(b"binary")
        assert [direction for direction, _ in station.wire] == ["in", "out", "in", "out", "in"]
        sent = [frame for direction, frame in station.wire if direction == "in"]
        assert sent == [HEARTBEAT, '[2, "2", "Heartbeat", {}]', b"binary"]
        answers = [json.loads(frame) for direction, frame in station.wire if direction == "out"]
        assert answers == [[3, "hb", {"currentTime": NOW}], [3, "2", {"currentTime": NOW}]]


async def test_record_wire_false_stops_the_record() -> None:
    """With record_wire False, frames go back and forth without being added to wire."""
    async with run_session(Csms) as (_, station):
        await station.call("1", "Heartbeat", {})
        station.record_wire = False
        assert await station.call("2", "Heartbeat", {}) == [3, "2", {"currentTime": NOW}]
        assert [direction for direction, _ in station.wire] == ["in", "out"]


# -- over loopback WebSockets ---------------------------------------------------------------


async def test_connect_scripted_talks_to_a_running_server() -> None:
    """connect_scripted joins a csms_kit server; calls are answered over the socket."""
    async with (
        serve(Csms, "127.0.0.1", 0, ping_interval=None) as server,
        connect_scripted(f"ws://127.0.0.1:{server.port}", "CP-7", "2.0.1") as station,
    ):
        assert station.connection.subprotocol == "ocpp2.0.1"
        assert await station.call("1", "Heartbeat", {}) == [3, "1", {"currentTime": NOW}]
        assert await station.nothing_more()


async def test_connect_scripted_reads_the_servers_close() -> None:
    """closed_with() over WebSockets returns the server's close code and reason."""
    async with (
        serve(Csms, "127.0.0.1", 0, ping_interval=None) as server,
        connect_scripted(f"ws://127.0.0.1:{server.port}", "CP-1") as station,
    ):
        await station.send(b'[2,"1","Heartbeat",{}]')
        assert await station.closed_with() == (1003, "OCPP-J uses text frames only")


@asynccontextmanager
async def plain_server(
    seen: list[tuple[str, str | None]], *, abort: bool = False
) -> AsyncIterator[str]:
    """A bare websockets server noting each request's path and offer; yields its URL."""

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen.append((ws.request.path, ws.request.headers.get("Sec-WebSocket-Protocol")))
        if abort:
            ws.transport.abort()
            return
        await ws.send('["hello"]')
        await ws.wait_closed()

    async with websockets_serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ocpp/"


@pytest.mark.parametrize("version", ["2.1", "ocpp2.1"])
async def test_connect_scripted_offers_the_version_on_the_station_path(version: str) -> None:
    """connect_scripted opens {url}/{station_id} offering ocpp{version}, either spelling."""
    seen: list[tuple[str, str | None]] = []
    async with plain_server(seen) as url, connect_scripted(url, "CP-3", version) as station:
        assert await station.recv() == ["hello"]
    assert seen == [("/ocpp/CP-3", "ocpp2.1")]


async def test_closed_with_fails_when_the_connection_drops_without_a_close() -> None:
    """closed_with() raises AssertionError when the TCP connection just goes away."""
    async with plain_server([], abort=True) as url, connect_scripted(url, "CP-4") as station:
        with pytest.raises(AssertionError, match="without a close frame"):
            await station.closed_with()
