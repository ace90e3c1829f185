"""Every exception csms_kit raises.

Whose fault it is decides where an exception sits::

    CsmsKitError
    ├── UsageError                the application misused csms_kit: fix the code
    │   └── InvalidPayload        an outgoing payload breaks the OCPP schema
    ├── RpcError                  raise it in a handler: it becomes the CALLERROR
    ├── RemoteProtocolError       the peer (station, or CSMS for a station) broke OCPP-J
    │   └── InvalidResponse       ... in its answer to our CALL (also a CallFailed)
    ├── TransportClosed           a transport's signal to its connection: it ended
    ├── DuplicateConnection       a second connection of a connected station (policy "reject")
    ├── ConnectFailed             a station could not connect to the CSMS (simulator)
    └── CallFailed                a call produced no usable response
        ├── StationNotConnected   no process holds a connected station by that id
        ├── BrokerUnavailable     the registry's broker (Redis, NATS) cannot be reached
        ├── CallError             the peer answered with a CALLERROR
        ├── CallTimeout           no answer in time (also a built-in TimeoutError)
        ├── InvalidResponse
        └── ConnectionEnded       the connection is gone
            ├── SessionClosed     ... because this side closed it
            └── PeerDisconnected  ... because the other side went away
                ├── StationDisconnected  (seen by the CSMS)
                └── CsmsDisconnected     (seen by a station)

No name here shadows a built-in. :class:`CallError` is deliberately *not* an
:class:`RpcError`: a station's error about our CALL, left uncaught in a handler, must
not be relayed as the answer to the station's own CALL (it becomes ``InternalError``).

Every exception a call can raise crosses process boundaries: :meth:`CsmsKitError.to_dict`
gives plain JSON-ready data and :func:`error_from_dict` rebuilds the same type with
the same attributes (a cluster registry relays a remote call's error this way).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from csms_kit.error_codes import ErrorCode

__all__ = [
    "BrokerUnavailable",
    "CallError",
    "CallFailed",
    "CallTimeout",
    "ConnectFailed",
    "ConnectionEnded",
    "CsmsDisconnected",
    "CsmsKitError",
    "DuplicateConnection",
    "InvalidPayload",
    "InvalidResponse",
    "PeerDisconnected",
    "RemoteProtocolError",
    "RpcError",
    "SessionClosed",
    "StationDisconnected",
    "StationNotConnected",
    "TransportClosed",
    "UsageError",
    "error_from_dict",
]


class CsmsKitError(Exception):
    """Root of every exception csms_kit raises."""

    #: The constructor's arguments, by name: what :meth:`to_dict` keeps.
    _fields: ClassVar[tuple[str, ...]] = ("message",)

    def __init__(self, message: str = "") -> None:
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by its fields, so that it unpickles with every attribute (the default
        # would call the constructor with the message alone).
        return (error_from_dict, (self.to_dict(),))

    @property
    def message(self) -> str:
        """The exception's text."""
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready) from which :func:`error_from_dict` rebuilds this error."""
        data: dict[str, Any] = {"error": type(self).__name__}
        for name in self._fields:
            value = getattr(self, name)
            data[name] = value.value if isinstance(value, ErrorCode) else value
        return data


def error_from_dict(data: Mapping[str, Any]) -> CsmsKitError:
    """Rebuild an exception from :meth:`CsmsKitError.to_dict`'s data.

    An unknown type name (a newer peer) gives a :class:`CallFailed` with the text
    it can find, never an exception of the wrong meaning.
    """
    cls = _BY_NAME.get(str(data.get("error")))
    if cls is None:
        return CallFailed(str(data.get("message") or f"remote error {data.get('error')!r}"))
    arguments: dict[str, Any] = {name: data.get(name) for name in cls._fields}
    if "code" in arguments and cls in (InvalidPayload, RpcError, InvalidResponse):
        arguments["code"] = ErrorCode(arguments["code"])
    return cls(**arguments)


class UsageError(CsmsKitError):
    """The application used csms_kit wrongly (a bug in the calling code)."""


class InvalidPayload(UsageError):
    """An outgoing request or response breaks the OCPP schema; nothing was sent.

    ``code`` is the OCPP-J error the peer would have answered with.
    """

    _fields = ("action", "code", "description", "details")

    def __init__(
        self,
        action: str,
        code: ErrorCode,
        description: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{action}: {description}")
        self.action = action
        self.code = code
        self.description = description
        self.details: dict[str, Any] = dict(details or {})


class RpcError(CsmsKitError):
    """An OCPP-J RPC error to answer a CALL with.

    Raise it in a handler to answer the peer's CALL with a CALLERROR carrying
    ``code`` (an :class:`~csms_kit.ErrorCode` or its spelling, e.g. ``"NotSupported"``),
    ``description`` (at most 255 characters are sent) and ``details``.
    (Not the ``ocpp`` package's ``OCPPError``, though handlers that raise that one
    are answered the same way.)
    """

    _fields = ("code", "description", "details")

    def __init__(
        self,
        code: ErrorCode | str,
        description: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(code, ErrorCode):
            known = ErrorCode.from_wire(code) if isinstance(code, str) else None
            if known is None:
                raise UsageError(f"{code!r} is not an OCPP-J errorCode (see ErrorCode)")
            code = known
        super().__init__(f"{code}: {description}" if description else str(code))
        self.code: ErrorCode = code
        self.description = description
        self.details: dict[str, Any] = dict(details or {})


class TransportClosed(CsmsKitError):
    """Raised by a transport's ``recv``/``send`` once the connection has ended.

    ``code`` and ``reason`` are from the close frame received (1006 when none was).
    Applications see :class:`ConnectionEnded` instead; this is for transport authors.
    """

    _fields = ("code", "reason")

    def __init__(self, code: int = 1006, reason: str = "") -> None:
        super().__init__(f"connection closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class RemoteProtocolError(CsmsKitError):
    """The peer broke the OCPP-J protocol."""


class CallFailed(CsmsKitError):
    """A call produced no usable response."""


class DuplicateConnection(CsmsKitError):
    """A station connected while already connected, and the registry refuses duplicates."""

    _fields = ("station_id",)

    def __init__(self, station_id: str) -> None:
        super().__init__(f"station {station_id!r} is already connected")
        self.station_id = station_id


class ConnectFailed(CsmsKitError):
    """A station could not connect to the CSMS at ``url``.

    ``kind`` says how far it got: ``"refused"`` (no TCP connection), ``"tls"`` (the
    TLS handshake failed), ``"handshake"`` (the CSMS refused the WebSocket handshake,
    with HTTP ``status`` when it answered one, or accepted none of the offered OCPP
    versions) or ``"timeout"``.
    """

    _fields = ("station_id", "url", "kind", "reason", "status")

    def __init__(
        self, station_id: str, url: str, kind: str, reason: str, status: int | None = None
    ) -> None:
        super().__init__(f"station {station_id!r} could not connect to {url}: {reason}")
        self.station_id = station_id
        self.url = url
        self.kind = kind
        self.reason = reason
        self.status = status


class StationNotConnected(CallFailed):
    """No station with this identity is connected (to any process sharing the registry)."""

    _fields = ("station_id",)

    def __init__(self, station_id: str) -> None:
        super().__init__(f"station {station_id!r} is not connected")
        self.station_id = station_id


class BrokerUnavailable(CallFailed):
    """The cluster registry's broker (Redis, NATS) at ``url`` cannot be reached."""

    _fields = ("url", "reason")

    def __init__(self, url: str, reason: str = "") -> None:
        super().__init__(f"cannot reach the registry at {url}" + (f": {reason}" if reason else ""))
        self.url = url
        self.reason = reason


class CallError(CallFailed):
    """The peer answered our CALL with a CALLERROR.

    ``code`` is the :class:`~csms_kit.ErrorCode` it names (``None`` when the peer sent
    a code no OCPP version defines); ``raw_code`` always holds the string it sent.
    """

    _fields = ("station_id", "action", "message_id", "raw_code", "description", "details")

    def __init__(
        self,
        station_id: str,
        action: str,
        message_id: str,
        raw_code: str,
        description: str,
        details: Mapping[str, Any],
    ) -> None:
        super().__init__(
            f"station {station_id!r}: {action} (messageId {message_id!r}) "
            f"answered with {raw_code}: {description}"
        )
        self.station_id = station_id
        self.action = action
        self.message_id = message_id
        self.code = ErrorCode.from_wire(raw_code)
        self.raw_code = raw_code
        self.description = description
        self.details: dict[str, Any] = dict(details)


class CallTimeout(CallFailed, TimeoutError):
    """No answer arrived in time. ``message_id`` is ``None`` if the CALL never left the queue."""

    _fields = ("station_id", "action", "message_id", "timeout")

    def __init__(
        self, station_id: str, action: str, message_id: str | None, timeout: float
    ) -> None:
        where = (
            f"messageId {message_id!r}"
            if message_id is not None
            else "still queued behind an outstanding CALL"
        )
        super().__init__(
            f"station {station_id!r}: no answer to {action} ({where}) in {timeout:g} s"
        )
        self.station_id = station_id
        self.action = action
        self.message_id = message_id
        self.timeout = timeout


class InvalidResponse(RemoteProtocolError, CallFailed):
    """The peer's answer to our CALL broke the schema or the frame rules.

    ``code`` is the OCPP-J error that describes the fault.
    """

    _fields = ("station_id", "action", "message_id", "code", "description", "details")

    def __init__(
        self,
        station_id: str,
        action: str,
        message_id: str,
        code: ErrorCode,
        description: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            f"station {station_id!r}: invalid answer to {action} "
            f"(messageId {message_id!r}): {description}"
        )
        self.station_id = station_id
        self.action = action
        self.message_id = message_id
        self.code = code
        self.description = description
        self.details: dict[str, Any] = dict(details or {})


class ConnectionEnded(CallFailed):
    """The connection has ended; ``code`` and ``reason`` are the close frame's."""

    _fields = ("station_id", "code", "reason")
    _what = "connection ended"

    def __init__(self, station_id: str, code: int | None = None, reason: str = "") -> None:
        detail = f" (close code {code}{', ' + reason if reason else ''})" if code else ""
        super().__init__(f"station {station_id!r}: {self._what}{detail}")
        self.station_id = station_id
        self.code = code
        self.reason = reason


class SessionClosed(ConnectionEnded):
    """This side closed the connection (``close()``, a server shutting down, a policy)."""

    _what = "connection closed on this side"


class PeerDisconnected(ConnectionEnded):
    """The other side went away: it closed the connection or the network dropped it."""

    _what = "the peer disconnected"


class StationDisconnected(PeerDisconnected):
    """The station went away (seen by the CSMS)."""

    _what = "the station disconnected"


class CsmsDisconnected(PeerDisconnected):
    """The CSMS went away (seen by a station)."""

    _what = "the CSMS disconnected"


_BY_NAME: dict[str, type[CsmsKitError]] = {
    cls.__name__: cls
    for cls in (
        CsmsKitError,
        UsageError,
        InvalidPayload,
        RpcError,
        TransportClosed,
        RemoteProtocolError,
        CallFailed,
        DuplicateConnection,
        ConnectFailed,
        StationNotConnected,
        BrokerUnavailable,
        CallError,
        CallTimeout,
        InvalidResponse,
        ConnectionEnded,
        SessionClosed,
        PeerDisconnected,
        StationDisconnected,
        CsmsDisconnected,
    )
}
