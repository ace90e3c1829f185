"""Helpers for testing code built on csms_kit, without a network.

:func:`memory_transport_pair` returns two connected in-memory transports: give one to
a :class:`~csms_kit.session.StationSession` and drive the other as the station::

    csms_side, station = memory_transport_pair()
    session = MySession("CP1", csms_side, "2.0.1")
    task = asyncio.create_task(session.run())
    await station.send('[2,"1","Heartbeat",{}]')
    print(await station.recv())
"""

from __future__ import annotations

import asyncio
from typing import Any

from csms_kit.exceptions import TransportClosed

__all__ = ["MemoryTransport", "memory_transport_pair"]

_NORMAL_CLOSURE = 1000


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
