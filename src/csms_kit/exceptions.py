"""Every exception csms_kit raises.

Whose fault it is decides where an exception sits::

    CsmsKitError
    ├── UsageError                the application misused csms_kit: fix the code
    │   └── InvalidPayload        an outgoing payload breaks the OCPP schema
    ├── OcppError                 an OCPP-J error; raised in a handler, it becomes the CALLERROR
    ├── StationProtocolError      the station broke OCPP-J
    │   └── InvalidResponse       ... in its answer to our CALL (also a CallFailed)
    ├── TransportClosed           a transport's signal to its session: the connection ended
    ├── DuplicateConnection       a second connection of a connected station (policy "reject")
    └── CallFailed                a call to a station produced no usable response
        ├── StationNotConnected   the registry knows no connected station by that id
        ├── CallError             the station answered with a CALLERROR
        ├── CallTimeout           no answer in time (also a built-in TimeoutError)
        ├── InvalidResponse
        └── ConnectionEnded       the connection is gone
            ├── SessionClosed     ... because we closed it
            └── StationDisconnected  ... because the station went away

No name here shadows a built-in. :class:`CallError` is deliberately *not* an
:class:`OcppError`: a station's error about our CALL, left uncaught in a handler, must
not be relayed as the answer to the station's own CALL (it becomes ``InternalError``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csms_kit.error_codes import ErrorCode

__all__ = [
    "CallError",
    "CallFailed",
    "CallTimeout",
    "ConnectionEnded",
    "CsmsKitError",
    "DuplicateConnection",
    "InvalidPayload",
    "InvalidResponse",
    "OcppError",
    "SessionClosed",
    "StationDisconnected",
    "StationNotConnected",
    "StationProtocolError",
    "TransportClosed",
    "UsageError",
]


class CsmsKitError(Exception):
    """Root of every exception csms_kit raises."""


class UsageError(CsmsKitError):
    """The application used csms_kit wrongly (a bug in the calling code)."""


class InvalidPayload(UsageError):
    """An outgoing request or response breaks the OCPP schema; nothing was sent.

    ``code`` is the OCPP-J error the peer would have answered with.
    """

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


class OcppError(CsmsKitError):
    """An OCPP-J RPC error.

    Raise it in a handler to answer the station's CALL with a CALLERROR carrying
    ``code``, ``description`` (at most 255 characters are sent) and ``details``.
    """

    def __init__(
        self,
        code: ErrorCode,
        description: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code.value}: {description}" if description else code.value)
        self.code = code
        self.description = description
        self.details: dict[str, Any] = dict(details or {})


class TransportClosed(CsmsKitError):
    """Raised by a transport's ``recv``/``send`` once the connection has ended.

    ``code`` and ``reason`` are from the close frame received (1006 when none was).
    Applications see :class:`ConnectionEnded` instead; this is for transport authors.
    """

    def __init__(self, code: int = 1006, reason: str = "") -> None:
        super().__init__(f"connection closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class StationProtocolError(CsmsKitError):
    """The station broke the OCPP-J protocol."""


class CallFailed(CsmsKitError):
    """A call to a station produced no usable response."""


class DuplicateConnection(CsmsKitError):
    """A station connected while already connected, and the registry refuses duplicates."""

    def __init__(self, station_id: str) -> None:
        super().__init__(f"station {station_id!r} is already connected")
        self.station_id = station_id


class StationNotConnected(CallFailed):
    """No station with this identity is connected."""

    def __init__(self, station_id: str) -> None:
        super().__init__(f"station {station_id!r} is not connected")
        self.station_id = station_id


class CallError(CallFailed):
    """The station answered our CALL with a CALLERROR.

    ``code`` is ``None`` when the station sent a code no OCPP version defines;
    ``raw_code`` always holds the string it sent.
    """

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
            f"station {station_id!r} answered {action} (messageId {message_id!r}) "
            f"with {raw_code}: {description}"
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

    def __init__(
        self, station_id: str, action: str, message_id: str | None, timeout: float
    ) -> None:
        where = (
            f"messageId {message_id!r}"
            if message_id is not None
            else "still queued behind an outstanding CALL"
        )
        super().__init__(
            f"station {station_id!r} did not answer {action} ({where}) within {timeout:g} s"
        )
        self.station_id = station_id
        self.action = action
        self.message_id = message_id
        self.timeout = timeout


class InvalidResponse(StationProtocolError, CallFailed):
    """The station's answer to our CALL broke the schema or the frame rules.

    ``code`` is the OCPP-J error that describes the fault.
    """

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
            f"station {station_id!r} sent an invalid answer to {action} "
            f"(messageId {message_id!r}): {description}"
        )
        self.station_id = station_id
        self.action = action
        self.message_id = message_id
        self.code = code
        self.description = description
        self.details: dict[str, Any] = dict(details or {})


class ConnectionEnded(CallFailed):
    """The station's connection has ended; ``code`` and ``reason`` are the close frame's."""

    def __init__(self, station_id: str, code: int | None = None, reason: str = "") -> None:
        detail = f" (close code {code}{', ' + reason if reason else ''})" if code else ""
        super().__init__(f"{self._what} {station_id!r}{detail}")
        self.station_id = station_id
        self.code = code
        self.reason = reason

    _what = "connection ended for station"


class SessionClosed(ConnectionEnded):
    """We closed the session (``StationSession.close`` or server shutdown)."""

    _what = "session was closed by the CSMS for station"


class StationDisconnected(ConnectionEnded):
    """The station went away: it closed the connection or the network dropped it."""

    _what = "station disconnected:"
