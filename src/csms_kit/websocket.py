"""The ``websockets`` side of csms_kit: a :class:`~csms_kit.transport.Transport` over it.

Used by the server (:mod:`csms_kit.server`) and the station client
(:mod:`csms_kit.client`); nothing else imports ``websockets``.
"""

from __future__ import annotations

import logging
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from csms_kit.exceptions import TransportClosed

__all__ = ["WebSocketTransport", "read_in_small_chunks", "redacting_logger"]

#: Close code for an abnormal closure: no close frame was received.
ABNORMAL_CLOSURE = 1006
#: Bytes asked of a plain socket per read; see :func:`read_in_small_chunks`.
READ_SIZE = 64 * 1024


class _RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs every handshake header at DEBUG: hide the credentials."""

    _SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if len(args) == 2 and isinstance(args[0], str) and args[0].lower() in self._SECRET_HEADERS:
            args = (args[0], "[redacted]")
        super().log(level, msg, *args, **kwargs)


def read_in_small_chunks(transport: Any) -> None:
    """Make an asyncio socket transport read at most :data:`READ_SIZE` bytes at a time.

    asyncio's selector transports ``recv(256 KiB)`` and shrink the result. Above
    glibc's mmap threshold, that buffer can cost an ``mmap``, two page faults and a
    ``munmap`` per frame, depending on the heap's layout; OCPP frames are small, and
    a 64 KiB buffer stays on the heap. Transports without the attribute (TLS, uvloop)
    are left alone.
    """
    size = getattr(transport, "max_size", None)
    if type(size) is int and size > READ_SIZE:
        transport.max_size = READ_SIZE


def redacting_logger(name: str) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """A logger for websockets that never writes credentials from the handshake."""
    return _RedactingLogger(logging.getLogger(name), {})


def _closed(exc: ConnectionClosed) -> TransportClosed:
    # The close frame received says why the station left; without one, the frame we
    # sent (e.g. 1009 message too big, 1011 ping timeout) says why we ended it.
    frame = exc.rcvd if exc.rcvd is not None else exc.sent
    if frame is None:
        return TransportClosed(ABNORMAL_CLOSURE, "")
    return TransportClosed(frame.code, frame.reason)


class WebSocketTransport:
    """:class:`Transport` over a ``websockets`` (asyncio API) connection."""

    __slots__ = ("connection",)

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def recv(self) -> str | bytes:
        try:
            return await self.connection.recv()
        except ConnectionClosed as exc:
            raise _closed(exc) from None

    async def send(self, message: str) -> None:
        try:
            await self.connection.send(message)
        except ConnectionClosed as exc:
            raise _closed(exc) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.connection.close(code, reason)

    @property
    def remote_address(self) -> Any:
        """The peer's address as the socket reports it."""
        return self.connection.remote_address
