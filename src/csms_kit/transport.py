"""What a connection (:class:`~csms_kit.connection.RpcConnection`) needs from a transport.

Any object with the three coroutine methods of :class:`Transport` will do; a
connection never touches the socket itself, and this module imports no I/O library.
:class:`~csms_kit.websocket.WebSocketTransport` adapts a ``websockets`` connection;
:func:`csms_kit.testing.memory_transport_pair` gives an in-memory pair for tests. A
new transport (ASGI, say) implements :class:`Transport` and hands it, with a ticket
from :class:`~csms_kit.admission.Admission`, to ``Admission.run``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Transport"]


@runtime_checkable
class Transport(Protocol):
    """A message-oriented, bidirectional connection to one station.

    Error handling: once the connection has ended, ``recv`` and ``send`` raise
    :class:`~csms_kit.exceptions.TransportClosed` with the close frame's code and
    reason (1006 when none came); ``close`` never raises.
    """

    async def recv(self) -> str | bytes:
        """The next message: ``str`` for a text frame, ``bytes`` for a binary one."""
        ...

    async def send(self, message: str) -> None:
        """Send one text message."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection with a close frame ``code``/``reason``."""
        ...
