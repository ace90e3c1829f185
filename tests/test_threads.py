"""Calling stations from other threads: ``call_from_thread`` works, and every wrong way
(another event loop, the loop's own thread, a registry no loop uses) fails at once."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16

from csms_kit import (
    CallError,
    CsmsServer,
    ErrorCode,
    InMemoryRegistry,
    StationNotConnected,
    StationSession,
    UsageError,
    serve,
)
from csms_kit.testing import ScriptedStation, connect_scripted

HOST = "127.0.0.1"
NOW = "2026-11-27T10:00:00Z"
TIMEOUT = 5.0
#: How long a thread may take to fail "at once" (its call's own timeout is 30 s).
AT_ONCE = 5.0


class Csms(StationSession):
    """No handlers needed: these tests call the station."""

    boot_gate = False


class Caller:
    """Runs ``func`` in a plain ``threading.Thread``; keeps its return value or exception."""

    def __init__(self, func: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(func,), daemon=True)
        self.thread.start()

    def _run(self, func: Callable[[], Any]) -> None:
        try:
            self.value = func()
        except BaseException as exc:
            self.error = exc

    async def finished(self, timeout: float = AT_ONCE) -> Caller:
        """Join the thread (without blocking the loop); fail if it is still running."""
        await asyncio.to_thread(self.thread.join, timeout)
        assert not self.thread.is_alive(), f"the thread still runs after {timeout:g} s"
        return self


@asynccontextmanager
async def station_on(
    version: str = "1.6",
) -> AsyncIterator[tuple[CsmsServer, ScriptedStation]]:
    """A server and a scripted station CP-1 connected and registered there."""
    async with (
        serve(Csms, HOST, 0, ping_interval=None, close_timeout=1) as server,
        connect_scripted(f"ws://{HOST}:{server.port}", "CP-1", version) as station,
    ):
        await server.registry.wait_connected("CP-1", TIMEOUT)
        yield server, station


@contextmanager
def no_unawaited_coroutines() -> Iterator[None]:
    """Fail if a coroutine is garbage-collected without having been awaited meanwhile."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    unawaited = [w for w in caught if "never awaited" in str(w.message)]
    assert not unawaited, [str(w.message) for w in unawaited]


# -- call_from_thread -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "action"),
    [(call16.Reset(type="Soft"), None), ({"type": "Soft"}, "Reset")],
    ids=["dataclass", "dict"],
)
async def test_call_from_thread_returns_the_typed_response(request_: Any, action: str) -> None:
    """From a plain thread, call_from_thread returns the station's answer as a dataclass."""
    async with station_on() as (server, station):
        registry = server.registry
        caller = Caller(
            lambda: registry.call_from_thread("CP-1", request_, action=action, timeout=TIMEOUT)
        )
        frame = await station.recv()
        assert frame[0] == 2 and frame[2:] == ["Reset", {"type": "Soft"}]
        await station.send([3, frame[1], {"status": "Accepted"}])
        await caller.finished(TIMEOUT)
        assert caller.error is None
        assert caller.value == result16.Reset(status="Accepted")
        assert isinstance(caller.value, result16.Reset)


async def test_call_from_thread_raises_call_error_in_the_thread() -> None:
    """A CALLERROR answer is raised in the calling thread as CallError, with its facts."""
    async with station_on() as (server, station):
        registry = server.registry
        caller = Caller(
            lambda: registry.call_from_thread("CP-1", call16.Reset(type="Hard"), timeout=TIMEOUT)
        )
        frame = await station.recv()
        await station.send([4, frame[1], "NotSupported", "no reset here", {"why": "test"}])
        await caller.finished(TIMEOUT)
        error = caller.error
        assert isinstance(error, CallError)
        assert error.code is ErrorCode.NOT_SUPPORTED
        assert (error.station_id, error.action, error.message_id) == ("CP-1", "Reset", frame[1])
        assert error.description == "no reset here" and error.details == {"why": "test"}


async def test_call_from_thread_to_a_station_not_connected() -> None:
    """call_from_thread to an identity nobody holds raises StationNotConnected in the thread."""
    async with station_on() as (server, station):
        registry = server.registry
        caller = Caller(
            lambda: registry.call_from_thread("CP-9", call16.Reset(type="Soft"), timeout=30)
        )
        await caller.finished()
        assert isinstance(caller.error, StationNotConnected)
        assert caller.error.station_id == "CP-9"
        assert await station.nothing_more()


async def test_call_from_thread_once_the_server_runs_with_no_station_yet() -> None:
    """A started server's registry is in use: a call from a thread gets StationNotConnected."""
    async with serve(Csms, HOST, 0, ping_interval=None) as server:
        registry = server.registry
        caller = Caller(
            lambda: registry.call_from_thread("CP-9", call16.Reset(type="Soft"), timeout=30)
        )
        await caller.finished()
        # UsageError says "start the server (or await a call) first": it was started.
        assert isinstance(caller.error, StationNotConnected), repr(caller.error)


async def test_send_from_thread_reaches_a_21_station() -> None:
    """send_from_thread from a plain thread delivers an OCPP 2.1 SEND to the station."""
    payload = {"id": 1, "pending": 0, "basetime": NOW, "data": [{"t": 0.5, "v": "42"}]}
    async with station_on("2.1") as (server, station):
        registry = server.registry
        caller = Caller(
            lambda: registry.send_from_thread("CP-1", payload, action="NotifyPeriodicEventStream")
        )
        frame = await station.recv()
        assert frame[0] == 6 and frame[2:] == ["NotifyPeriodicEventStream", payload]
        await caller.finished(TIMEOUT)
        assert caller.error is None and caller.value is None


# -- the wrong ways fail at once ----------------------------------------------------------


async def test_registry_call_in_another_event_loop_fails_at_once() -> None:
    """asyncio.run(registry.call(...)) in a thread raises UsageError naming call_from_thread."""
    async with station_on() as (server, station):
        registry = server.registry
        caller = Caller(
            lambda: asyncio.run(registry.call("CP-1", call16.Reset(type="Soft"), timeout=30))
        )
        await caller.finished()
        assert isinstance(caller.error, UsageError), repr(caller.error)
        assert "call_from_thread" in str(caller.error)
        assert await station.nothing_more()


async def test_session_call_in_another_event_loop_fails_at_once() -> None:
    """asyncio.run(session.call(...)) in a thread raises UsageError naming call_from_thread."""
    async with station_on() as (server, station):
        session = server.registry.local_session("CP-1")
        assert session is not None
        caller = Caller(lambda: asyncio.run(session.call(call16.Reset(type="Soft"), timeout=30)))
        await caller.finished()
        assert isinstance(caller.error, UsageError), repr(caller.error)
        assert "call_from_thread" in str(caller.error)
        assert await station.nothing_more()


async def test_call_from_thread_in_the_loops_own_thread_raises() -> None:
    """call_from_thread (or send_from_thread) from the loop's thread raises UsageError at once."""
    async with station_on() as (server, station):
        with no_unawaited_coroutines():
            with pytest.raises(UsageError) as raised:
                server.registry.call_from_thread("CP-1", call16.Reset(type="Soft"), timeout=30)
            assert "await registry.call" in str(raised.value)
            with pytest.raises(UsageError):
                server.registry.send_from_thread("CP-1", {}, action="NotifyPeriodicEventStream")
        assert await station.nothing_more()


def test_call_from_thread_before_any_loop_used_the_registry_raises() -> None:
    """A registry no event loop has used yet: call_from_thread raises UsageError, no warning."""
    registry = InMemoryRegistry()
    with no_unawaited_coroutines():
        with pytest.raises(UsageError) as raised:
            registry.call_from_thread("CP-1", {"type": "Soft"}, action="Reset", timeout=30)
        assert "not in use" in str(raised.value)
        with pytest.raises(UsageError):
            registry.send_from_thread("CP-1", {}, action="NotifyPeriodicEventStream")


def test_call_from_thread_after_the_registrys_loop_closed_raises() -> None:
    """Once the loop that used the registry is closed, call_from_thread raises UsageError."""
    registry = InMemoryRegistry()
    with pytest.raises(StationNotConnected):
        asyncio.run(registry.call("CP-1", {"type": "Soft"}, action="Reset"))
    with no_unawaited_coroutines(), pytest.raises(UsageError):
        registry.call_from_thread("CP-1", {"type": "Soft"}, action="Reset", timeout=30)
