"""Helpers for testing code built on csms_kit: play a station by hand, frame by frame.

:func:`run_session` runs a session class in memory against a :class:`ScriptedStation`;
:func:`connect_scripted` connects one to a running server over a real WebSocket. The
station sends OCPP-J frames and checks what comes back; a wrong frame fails with
``AssertionError``, so the helpers work in any test runner::

    async with run_session(MySession, "1.6") as (session, station):
        assert await station.call("1", "Heartbeat", {}) == [3, "1", {"currentTime": NOW}]
        assert await station.nothing_more()

    async with serve(MySession, "127.0.0.1", 0) as server:
        async with connect_scripted(f"ws://127.0.0.1:{server.port}", "CP-1") as station:
            await station.send('[2,"1","Heartbeat",{}]')
            print(await station.recv())

Underneath, :func:`memory_transport_pair` returns two connected in-memory transports:
give one to a :class:`~csms_kit.session.StationSession` and drive the other, raw or
wrapped in a :class:`ScriptedStation`::

    csms_side, station_side = memory_transport_pair()
    session = MySession("CP1", csms_side, "2.0.1")
    task = asyncio.create_task(session.run())
    await station_side.send('[2,"1","Heartbeat",{}]')
    print(await station_side.recv())
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from csms_kit.exceptions import TransportClosed

if TYPE_CHECKING:
    from csms_kit.role import Role

__all__ = [
    "MemoryTransport",
    "ScriptedStation",
    "connect_scripted",
    "memory_transport_pair",
    "run_session",
]

_NORMAL_CLOSURE = 1000
#: Seconds a scripted station waits for an expected frame or close, unless told.
_TIMEOUT = 5.0
#: Seconds ``run_session`` gives the session to end once the station has closed.
_SESSION_END_TIMEOUT = 10.0

_SessionT = TypeVar("_SessionT", bound="Role")


class _Closed:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class MemoryTransport:
    """One end of an in-memory connection; implements :class:`~csms_kit.transport.Transport`.

    Messages arrive in order; ``close`` delivers a close frame to both ends after the
    messages already sent. ``send`` also accepts ``bytes`` (a binary frame), so tests
    can play a misbehaving station.
    """

    def __init__(self, remote_address: Any = ("memory", 0)) -> None:
        self._incoming: asyncio.Queue[str | bytes | _Closed] = asyncio.Queue()
        self._peer: MemoryTransport | None = None
        self._closed: _Closed | None = None
        self.remote_address = remote_address

    async def recv(self) -> str | bytes:
        if self._closed is not None and self._incoming.empty():
            raise TransportClosed(self._closed.code, self._closed.reason)
        item = await self._incoming.get()
        if isinstance(item, _Closed):
            self._closed = item
            self._incoming.put_nowait(item)  # every later recv raises too
            raise TransportClosed(item.code, item.reason)
        return item

    async def send(self, message: str | bytes) -> None:
        if self._closed is not None or self._peer is None or self._peer._closed is not None:
            closed = self._closed or _Closed(1006, "")
            raise TransportClosed(closed.code, closed.reason)
        self._peer._incoming.put_nowait(message)
        await asyncio.sleep(0)  # like a real socket, sending yields to the loop

    async def close(self, code: int = _NORMAL_CLOSURE, reason: str = "") -> None:
        if self._closed is not None:
            return
        frame = _Closed(code, reason)
        self._closed = frame
        self._incoming.put_nowait(frame)
        if self._peer is not None and self._peer._closed is None:
            self._peer._incoming.put_nowait(frame)

    @property
    def closed(self) -> bool:
        """Whether this end has seen or sent a close."""
        return self._closed is not None


def memory_transport_pair() -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected :class:`MemoryTransport` ends: (CSMS side, station side)."""
    csms, station = MemoryTransport(), MemoryTransport()
    csms._peer, station._peer = station, csms
    return csms, station


class _FrameConnection(Protocol):
    """What a :class:`ScriptedStation` drives: a memory end or a ``websockets`` client."""

    async def recv(self) -> str | bytes: ...

    async def send(self, message: str | bytes) -> None: ...

    async def close(self, code: int = ..., reason: str = ...) -> None: ...


#: How each kind of connection says it has ended.
_CLOSED = (TransportClosed, ConnectionClosed)


def _close_of(exc: TransportClosed | ConnectionClosed) -> tuple[int, str] | None:
    """The (code, reason) of the close frame the peer sent, or None if it sent none."""
    if isinstance(exc, TransportClosed):
        return exc.code, exc.reason
    frame = exc.rcvd
    return None if frame is None else (frame.code, frame.reason)


class ScriptedStation:
    """A station played by the test: send OCPP-J frames, assert on what comes back.

    ``connection`` is a :class:`MemoryTransport` end (see :func:`run_session`) or a
    ``websockets`` client connection (see :func:`connect_scripted`); use it directly for
    anything the helpers do not cover. ``timeout`` is how long :meth:`recv` and
    :meth:`closed_with` wait unless told otherwise.

    Resource handling: :attr:`wire` keeps every frame; for a flood of frames (or while
    measuring memory) set ``record_wire`` to False.

    Error handling: a frame that is not what the method expects raises
    ``AssertionError``; :meth:`recv` lets the connection's own exception through once it
    has ended (:class:`~csms_kit.exceptions.TransportClosed`, or ``websockets``'
    ``ConnectionClosed``), and ``TimeoutError`` when nothing arrives in time.
    """

    def __init__(
        self, connection: _FrameConnection, *, timeout: float = _TIMEOUT, record_wire: bool = True
    ) -> None:
        self.connection = connection
        self.timeout = timeout
        self.record_wire = record_wire
        #: Every frame sent and received while ``record_wire`` is true, in order, as
        #: ("in" or "out", frame) from the CSMS's point of view: "in" for the station's.
        self.wire: list[tuple[str, str | bytes]] = []

    async def send(self, frame: Any) -> None:
        """Send ``frame``: a ``str`` or ``bytes`` as it is, anything else as JSON text."""
        message = frame if isinstance(frame, (str, bytes)) else json.dumps(frame)
        await self.connection.send(message)
        if self.record_wire:
            self.wire.append(("in", message))

    async def recv(self, timeout: float | None = None) -> list[Any]:
        """The next frame, decoded; it must be a text frame holding a JSON array."""
        message = await self._next(self.timeout if timeout is None else timeout)
        assert isinstance(message, str), f"expected a text frame, got binary {message!r}"
        try:
            frame = json.loads(message)
        except ValueError:
            raise AssertionError(f"expected a JSON frame, got {message!r}") from None
        assert isinstance(frame, list), f"expected a JSON array, got {message!r}"
        return frame

    async def call(self, message_id: str, action: str, payload: dict[str, Any]) -> list[Any]:
        """Send the CALL ``[2, message_id, action, payload]``; return the next frame."""
        await self.send([2, message_id, action, payload])
        return await self.recv()

    async def nothing_more(self, wait: float = 0.1) -> bool:
        """True if no frame arrives within ``wait`` seconds; a close counts as none."""
        try:
            await self._next(wait)
        except (asyncio.TimeoutError, *_CLOSED):
            return True
        return False

    async def closed_with(self, timeout: float | None = None) -> tuple[int, str]:
        """Wait for the peer's close frame and return its (code, reason).

        Fails if a frame arrives first, if the connection ends without a close frame,
        or if nothing happens within ``timeout`` seconds.
        """
        timeout = self.timeout if timeout is None else timeout
        try:
            message = await self._next(timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no close within {timeout:g} s") from None
        except _CLOSED as exc:
            close = _close_of(exc)
            assert close is not None, "the connection ended without a close frame"
            return close
        raise AssertionError(f"expected a close, got the frame {message!r}")

    async def close(self, code: int = _NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection with ``code`` and ``reason``."""
        await self.connection.close(code, reason)

    async def _next(self, timeout: float) -> str | bytes:
        message = await asyncio.wait_for(self.connection.recv(), timeout)
        if self.record_wire:
            self.wire.append(("out", message))
        return message


@asynccontextmanager
async def run_session(
    session_class: type[_SessionT],
    version: str = "1.6",
    station_id: str = "CP-1",
    **options: Any,
) -> AsyncIterator[tuple[_SessionT, ScriptedStation]]:
    """Run a ``session_class`` session (or any role) in memory, with a scripted peer.

    The session is ``session_class(station_id, transport, version, **options)``; its
    ``run()`` goes on in a task while the block, given ``(session, station)``, runs.

    Resource handling: on exit the station closes its end (if not closed yet) and the
    session gets 10 s to end; then its task is cancelled and ``TimeoutError`` raised.
    An exception from ``run()`` is raised here.
    """
    csms_side, station_side = memory_transport_pair()
    session = session_class(station_id, csms_side, version, **options)
    task = asyncio.create_task(session.run())
    try:
        yield session, ScriptedStation(station_side)
    finally:
        await station_side.close()
        await asyncio.wait_for(task, _SESSION_END_TIMEOUT)


@asynccontextmanager
async def connect_scripted(
    url: str,
    station_id: str,
    version: str = "1.6",
    *,
    timeout: float = _TIMEOUT,
    **websockets_options: Any,
) -> AsyncIterator[ScriptedStation]:
    """Connect a scripted station to the server at ``url`` as ``station_id``.

    It opens ``{url}/{station_id}`` (``station_id`` as given: percent-encode it if it
    needs to be) offering the subprotocol of ``version`` (``"1.6"`` or ``"ocpp1.6"``).
    ``websockets_options`` go to ``websockets.asyncio.client.connect``; defaults are
    ``ping_interval=None``, ``close_timeout=1`` and ``open_timeout=5``. Passing
    ``subprotocols`` replaces the offer. ``timeout`` is the station's
    :attr:`ScriptedStation.timeout`.

    Resource handling: the connection is closed (1000) when the block exits.
    """
    subprotocol = version if version.startswith("ocpp") else f"ocpp{version}"
    websockets_options.setdefault("subprotocols", [Subprotocol(subprotocol)])
    websockets_options.setdefault("ping_interval", None)
    websockets_options.setdefault("close_timeout", 1)
    websockets_options.setdefault("open_timeout", 5)
    async with connect(f"{url.rstrip('/')}/{station_id}", **websockets_options) as ws:
        yield ScriptedStation(ws, timeout=timeout)
