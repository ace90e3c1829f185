"""Instruments over a real loopback server: each point fires once per occurrence, with the
right arguments; a failing instrument breaks nothing; absent points are ``None``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from csms_kit import (
    CallError,
    CallTimeout,
    CsmsServer,
    ErrorCode,
    Handshake,
    Instrument,
    OcppVersion,
    Rejection,
    RpcError,
    StationDisconnected,
    StationSession,
    on,
    serve,
)
from csms_kit.instruments import Instruments
from csms_kit.testing import ScriptedStation, connect_scripted
from tests.helpers import wait_until

HOST = "127.0.0.1"
NOW = "2026-11-27T10:00:00Z"
TIMEOUT = 5.0
VERSIONS = ["1.6", "2.0.1"]
POINTS = (
    "handshake_rejected",
    "connection_opened",
    "connection_closed",
    "frame_received",
    "frame_sent",
    "call_started",
    "call_finished",
    "frame_refused",
    "throttled",
    "handler_failed",
    "keepalive_timeout",
)


class Csms(StationSession):
    """Heartbeat answered; DataTransfer fails on demand (vendorId "rpc" or "crash")."""

    boot_gate = False

    @on("Heartbeat")
    def heartbeat(self, request: Any) -> dict[str, Any]:
        return {"currentTime": NOW}

    @on("DataTransfer")
    def data_transfer(self, request: Any) -> dict[str, Any]:
        if request.vendor_id == "rpc":
            raise RpcError(ErrorCode.GENERIC_ERROR, "refused on purpose")
        if request.vendor_id == "crash":
            raise RuntimeError("boom")
        return {"status": "Accepted"}


class Recorder(Instrument):
    """Records every point it is called at, as (name, args), in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[Any, ...]]] = []

    def of(self, name: str) -> list[tuple[Any, ...]]:
        """The arguments of every call to point ``name``, in order."""
        return [args for point, args in self.seen if point == name]

    def names(self) -> list[str]:
        return [point for point, _ in self.seen]

    async def wait_for(self, name: str, count: int = 1) -> None:
        await wait_until(lambda: len(self.of(name)) >= count, TIMEOUT, f"{count} x {name}")

    def handshake_rejected(self, *args: Any) -> None:
        self.seen.append(("handshake_rejected", args))

    def connection_opened(self, *args: Any) -> None:
        self.seen.append(("connection_opened", args))

    def connection_closed(self, *args: Any) -> None:
        self.seen.append(("connection_closed", args))

    def frame_received(self, *args: Any) -> None:
        self.seen.append(("frame_received", args))

    def frame_sent(self, *args: Any) -> None:
        self.seen.append(("frame_sent", args))

    def call_started(self, *args: Any) -> None:
        self.seen.append(("call_started", args))

    def call_finished(self, *args: Any) -> None:
        self.seen.append(("call_finished", args))

    def frame_refused(self, *args: Any) -> None:
        self.seen.append(("frame_refused", args))

    def throttled(self, *args: Any) -> None:
        self.seen.append(("throttled", args))

    def handler_failed(self, *args: Any) -> None:
        self.seen.append(("handler_failed", args))

    def keepalive_timeout(self, *args: Any) -> None:
        self.seen.append(("keepalive_timeout", args))


def start(*instruments: Any, **options: Any) -> CsmsServer:
    """A server on a free loopback port with ``instruments``."""
    options.setdefault("close_timeout", 1)
    options.setdefault("ping_interval", None)
    return serve(Csms, HOST, 0, instruments=instruments, **options)


@asynccontextmanager
async def station_on(
    *instruments: Any, version: str = "1.6"
) -> AsyncIterator[tuple[CsmsServer, ScriptedStation]]:
    """A server with ``instruments`` and a scripted station CP-1 connected to it."""
    async with (
        start(*instruments) as server,
        connect_scripted(f"ws://{HOST}:{server.port}", "CP-1", version) as station,
    ):
        yield server, station


def texts(station: ScriptedStation, direction: str) -> list[str]:
    """The text frames the station sent ("in") or received ("out"), in order."""
    return [frame for way, frame in station.wire if way == direction and isinstance(frame, str)]


# -- the handshake and the connection ---------------------------------------------------


async def test_handshake_rejected_for_a_malformed_identity() -> None:
    """A path with a malformed identity is refused with 400: one handshake_rejected(None, 400)."""
    rec = Recorder()
    async with start(rec) as server:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://{HOST}:{server.port}/{'x' * 49}", open_timeout=TIMEOUT):
                pass  # pragma: no cover - the handshake must fail
        assert refused.value.response.status_code == 400
    assert rec.names() == ["handshake_rejected"]
    ((station_id, status, reason),) = rec.of("handshake_rejected")
    assert station_id is None and status == 400
    assert "longer than 48" in reason


async def test_handshake_rejected_by_the_authenticate_hook() -> None:
    """An authenticate hook's Rejection(401) fires handshake_rejected with its status and body."""
    rec = Recorder()

    def authenticate(handshake: Handshake) -> Rejection:
        return Rejection(401, "bad credentials\n")

    async with start(rec, authenticate=authenticate) as server:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://{HOST}:{server.port}/CP-1", open_timeout=TIMEOUT):
                pass  # pragma: no cover - the handshake must fail
        assert refused.value.response.status_code == 401
    assert rec.of("handshake_rejected") == [("CP-1", 401, "bad credentials")]
    assert rec.of("connection_opened") == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_connection_opened_names_station_and_version(version: str) -> None:
    """connection_opened fires once with the station id and the version as a string."""
    rec = Recorder()
    async with station_on(rec, version=version) as (_, station):
        await station.call("hb-1", "Heartbeat", {})  # the session runs: it was opened
        assert rec.of("connection_opened") == [("CP-1", version)]
    assert rec.of("connection_opened") == [("CP-1", version)]
    assert rec.of("handshake_rejected") == []


async def test_connection_closed_carries_the_stations_close_frame() -> None:
    """After the station closes with 4000 "bye", connection_closed("CP-1", 4000, "bye") fires."""
    rec = Recorder()
    async with station_on(rec) as (server, station):
        await station.call("hb-1", "Heartbeat", {})
        assert rec.of("connection_closed") == []
        await station.close(4000, "bye")
        await rec.wait_for("connection_closed")
        assert rec.of("connection_closed") == [("CP-1", 4000, "bye")]
        await wait_until(lambda: not server.sessions, TIMEOUT, "session ended")
    assert rec.of("connection_closed") == [("CP-1", 4000, "bye")]
    assert rec.names().index("connection_opened") < rec.names().index("connection_closed")


# -- the station's CALLs ------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_incoming_call_fires_frame_and_call_points(version: str) -> None:
    """A station's CALL: frame_received, call_started, frame_sent, call_finished, once each."""
    rec = Recorder()
    async with station_on(rec, version=version) as (_, station):
        assert await station.call("hb-1", "Heartbeat", {}) == [3, "hb-1", {"currentTime": NOW}]
        await rec.wait_for("call_finished")
        (sent_text,) = texts(station, "in")
        (answer_text,) = texts(station, "out")
        assert rec.of("frame_received") == [("CP-1", "call", "Heartbeat", len(sent_text))]
        assert rec.of("frame_sent") == [("CP-1", "result", "Heartbeat", len(answer_text))]
        assert rec.of("call_started") == [("CP-1", "in", "Heartbeat", "hb-1")]
        ((*finished, duration),) = rec.of("call_finished")
        assert finished == ["CP-1", "in", "Heartbeat", "hb-1", "result"]
        assert isinstance(duration, float) and duration >= 0
        frame_points = [n for n in rec.names() if n.startswith(("frame_", "call_"))]
        assert frame_points == ["frame_received", "call_started", "frame_sent", "call_finished"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_handler_raising_rpc_error_finishes_with_error(version: str) -> None:
    """A handler raising RpcError: its CALLERROR is frame_sent "error", outcome "error"."""
    rec = Recorder()
    async with station_on(rec, version=version) as (_, station):
        answer = await station.call("dt-1", "DataTransfer", {"vendorId": "rpc"})
        assert answer[:4] == [4, "dt-1", "GenericError", "refused on purpose"]
        await rec.wait_for("call_finished")
        assert rec.of("frame_sent") == [
            ("CP-1", "error", "DataTransfer", len(texts(station, "out")[0]))
        ]
        assert rec.of("call_started") == [("CP-1", "in", "DataTransfer", "dt-1")]
        ((*finished, duration),) = rec.of("call_finished")
        assert finished == ["CP-1", "in", "DataTransfer", "dt-1", "error"]
        assert duration >= 0
        assert rec.of("handler_failed") == []  # an RpcError is an answer, not a failure
        assert rec.of("frame_refused") == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_handler_failed_for_a_handler_raising(version: str) -> None:
    """A handler raising RuntimeError: handler_failed(station, action, the exception), once."""
    rec = Recorder()
    async with station_on(rec, version=version) as (_, station):
        answer = await station.call("dt-1", "DataTransfer", {"vendorId": "crash"})
        assert answer[:3] == [4, "dt-1", "InternalError"]
        await rec.wait_for("call_finished")
        ((station_id, action, error),) = rec.of("handler_failed")
        assert (station_id, action) == ("CP-1", "DataTransfer")
        assert isinstance(error, RuntimeError) and str(error) == "boom"
        ((*finished, _),) = rec.of("call_finished")
        assert finished == ["CP-1", "in", "DataTransfer", "dt-1", "error"]


# -- frames refused -----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_frame_refused_for_an_unknown_action(version: str) -> None:
    """An unknown action: frame_refused(NotImplemented, malformed False), no call points."""
    rec = Recorder()
    async with station_on(rec, version=version) as (_, station):
        answer = await station.call("x-1", "FooBar", {})
        assert answer[:3] == [4, "x-1", "NotImplemented"]
        await rec.wait_for("frame_sent")
        assert rec.of("frame_refused") == [("CP-1", "NotImplemented", answer[3], False)]
        assert rec.of("frame_sent") == [("CP-1", "error", None, len(texts(station, "out")[0]))]
        assert len(rec.of("frame_received")) == 1
        assert rec.of("call_started") == [] and rec.of("call_finished") == []


AUTHORIZE: dict[str, dict[str, Any]] = {
    "1.6": {"idTag": "TAG-1"},
    "2.0.1": {"idToken": {"idToken": "TAG-1", "type": "Central"}},
}


@pytest.mark.parametrize("version", VERSIONS)
async def test_frame_received_for_a_refused_call_is_a_call(version: str) -> None:
    """A valid CALL refused for want of a handler is received as kind "call", with its action."""
    rec = Recorder()
    async with station_on(rec, version=version) as (_, station):
        answer = await station.call("a-1", "Authorize", AUTHORIZE[version])
        assert answer[:3] == [4, "a-1", "NotSupported"]
        await rec.wait_for("frame_sent")
        assert rec.of("frame_refused") == [("CP-1", "NotSupported", answer[3], False)]
        # "invalid" is for a frame that broke OCPP-J; this one did not (malformed False).
        size = len(texts(station, "in")[0])
        assert rec.of("frame_received") == [("CP-1", "call", "Authorize", size)]


@pytest.mark.parametrize("version", VERSIONS)
async def test_frame_refused_for_garbage_text(version: str) -> None:
    """A text frame that is not OCPP-J: frame_received "invalid", frame_refused malformed True."""
    rec = Recorder()
    async with station_on(rec, version=version) as (_, station):
        await station.send("this is not json")
        answer = await station.recv()
        assert answer[0] == 4
        await rec.wait_for("frame_sent")
        ((station_id, code, reason, malformed),) = rec.of("frame_refused")
        assert station_id == "CP-1" and malformed is True and reason == answer[3]
        # The instrument gets the code's canonical name; spelled for the version, the wire's.
        assert ErrorCode(code).spelled_for(OcppVersion.parse(version)) == answer[2]
        assert rec.of("frame_received") == [("CP-1", "invalid", None, len("this is not json"))]
        assert rec.of("frame_sent") == [("CP-1", "error", None, len(texts(station, "out")[0]))]
        assert rec.of("call_started") == []
        assert await station.call("hb-1", "Heartbeat", {}) == [3, "hb-1", {"currentTime": NOW}]


# -- our CALLs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "raised", "outcome"),
    [
        ("result", None, "result"),
        ("callerror", CallError, "error"),
        ("silence", CallTimeout, "timeout"),
        ("close", StationDisconnected, "disconnected"),
    ],
)
async def test_outgoing_call_points_per_outcome(
    answer: str, raised: type[Exception] | None, outcome: str
) -> None:
    """registry.call to a 1.6 station: call_started/frame_sent/call_finished with the outcome."""
    rec = Recorder()
    async with station_on(rec) as (server, station):
        await server.registry.wait_connected("CP-1", TIMEOUT)
        task = asyncio.create_task(
            server.registry.call("CP-1", {"type": "Soft"}, action="Reset", timeout=0.2)
            if answer == "silence"
            else server.registry.call("CP-1", {"type": "Soft"}, action="Reset")
        )
        frame = await station.recv()
        assert frame[0] == 2 and frame[2:] == ["Reset", {"type": "Soft"}]
        message_id = frame[1]
        if answer == "result":
            await station.send([3, message_id, {"status": "Accepted"}])
        elif answer == "callerror":
            await station.send([4, message_id, "NotSupported", "no reset here", {}])
        elif answer == "close":
            await station.close(4000, "bye")
        if raised is None:
            response = await task
            assert response.status == "Accepted"
        else:
            with pytest.raises(raised):
                await task
        assert rec.of("call_started") == [("CP-1", "out", "Reset", message_id)]
        ((*finished, duration),) = rec.of("call_finished")
        assert finished == ["CP-1", "out", "Reset", message_id, outcome]
        assert duration >= 0
        (call_text,) = texts(station, "out")
        assert rec.of("frame_sent") == [("CP-1", "call", "Reset", len(call_text))]
        station_texts = texts(station, "in")
        if answer == "result":
            assert rec.of("frame_received") == [("CP-1", "result", "Reset", len(station_texts[0]))]
        elif answer == "callerror":
            assert rec.of("frame_received") == [("CP-1", "error", "Reset", len(station_texts[0]))]
        else:
            assert rec.of("frame_received") == []


async def test_keepalive_timeout_names_the_silent_station() -> None:
    """A station that stops reading is closed by the keepalive: keepalive_timeout fires once."""
    rec = Recorder()
    async with (
        start(rec, ping_interval=0.1, ping_timeout=0.2) as server,
        connect_scripted(f"ws://{HOST}:{server.port}", "CP-1", "1.6") as station,
    ):
        await station.call("hb-1", "Heartbeat", {})
        assert rec.of("keepalive_timeout") == []
        station.connection.transport.pause_reading()  # type: ignore[attr-defined]
        await rec.wait_for("connection_closed")
        ((station_id, reason),) = rec.of("keepalive_timeout")
        assert station_id == "CP-1"
        assert reason == "no pong within 0.2 s"
        station.connection.transport.resume_reading()  # type: ignore[attr-defined]


async def test_an_incoming_call_answered_after_the_station_left_is_disconnected() -> None:
    """A handler still running when its station leaves: call_finished says "disconnected"."""
    rec = Recorder()
    release = asyncio.Event()

    class Slow(Csms):
        @on("Authorize")
        async def authorize(self, request: Any) -> dict[str, Any]:
            await release.wait()
            return {"idTagInfo": {"status": "Accepted"}}

    async with serve(Slow, HOST, 0, ping_interval=None, instruments=[rec]) as server:
        async with connect_scripted(f"ws://{HOST}:{server.port}", "CP-1", "1.6") as station:
            await station.send([2, "a-1", "Authorize", {"idTag": "T"}])
            await rec.wait_for("call_started")
            (session,) = server.sessions
        # Ended (the station is gone), its handler still running: it waits for it.
        await wait_until(lambda: session.ended, TIMEOUT, "the connection ended")
        assert rec.of("call_finished") == []
        release.set()
        await rec.wait_for("call_finished")
    ((*finished, _),) = rec.of("call_finished")
    assert finished == ["CP-1", "in", "Authorize", "a-1", "disconnected"]
    assert rec.of("frame_sent") == []


# -- what instruments may be ------------------------------------------------------------


async def test_a_plain_object_with_one_method_is_an_instrument() -> None:
    """An object that is no Instrument subclass, with only call_finished, is called there."""

    class OnlyFinished:
        def __init__(self) -> None:
            self.finished: list[tuple[Any, ...]] = []

        def call_finished(self, *args: Any) -> None:
            self.finished.append(args)

    only = OnlyFinished()
    async with station_on(only) as (_, station):
        assert await station.call("hb-1", "Heartbeat", {}) == [3, "hb-1", {"currentTime": NOW}]
        await wait_until(lambda: bool(only.finished), TIMEOUT, "call_finished")
    ((*finished, _),) = only.finished
    assert finished == ["CP-1", "in", "Heartbeat", "hb-1", "result"]


async def test_a_raising_instrument_is_logged_and_the_station_still_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An instrument method that raises is logged; the frame is answered, other instruments run."""

    class Broken(Instrument):
        def frame_received(self, *args: Any) -> None:
            raise RuntimeError("instrument bug")

    rec = Recorder()
    with caplog.at_level(logging.ERROR, logger="csms_kit.instruments"):
        async with station_on(Broken(), rec) as (_, station):
            assert await station.call("hb-1", "Heartbeat", {}) == [
                3,
                "hb-1",
                {"currentTime": NOW},
            ]
            await rec.wait_for("call_finished")
    assert len(rec.of("frame_received")) == 1
    failures = [r for r in caplog.records if r.name == "csms_kit.instruments"]
    assert len(failures) == 1
    assert "frame_received" in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], RuntimeError)


def test_no_instrument_leaves_every_point_none() -> None:
    """Instruments() with no instrument: every point is None (one attribute test, no call)."""
    none = Instruments()
    assert not none
    assert all(getattr(none, point) is None for point in POINTS)
    public = {name for name in vars(Instrument) if not name.startswith("_")}
    assert public == set(POINTS)


def test_only_overridden_points_are_observed() -> None:
    """An Instrument overriding only call_finished sets that point alone; the base sets none."""

    class Finished(Instrument):
        def call_finished(self, *args: Any) -> None:
            pass

    some = Instruments([Finished()])
    assert some
    assert some.call_finished is not None
    assert all(getattr(some, point) is None for point in POINTS if point != "call_finished")
    base = Instruments([Instrument()])
    assert all(getattr(base, point) is None for point in POINTS)
