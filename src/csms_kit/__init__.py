"""csms_kit: build OCPP CSMS backends in Python.

The public API, exported here and only here::

    from csms_kit import StationSession, on, after

    class MySession(StationSession):
        @on("Heartbeat")
        def heartbeat(self, request):
            ...

The sans-I/O core lives in :mod:`csms_kit.protocol`; test helpers in
:mod:`csms_kit.testing`.
"""

from csms_kit.client import StationClient, connect_station
from csms_kit.clock import current_time
from csms_kit.error_codes import ErrorCode
from csms_kit.exceptions import (
    CallError,
    CallFailed,
    CallTimeout,
    ConnectionEnded,
    CsmsKitError,
    DuplicateConnection,
    InvalidPayload,
    InvalidResponse,
    OcppError,
    SessionClosed,
    StationDisconnected,
    StationNotConnected,
    StationProtocolError,
    TransportClosed,
    UsageError,
)
from csms_kit.hooks import Handshake, Hooks, Rejection
from csms_kit.identity import InvalidIdentity
from csms_kit.limits import Limits, RateLimit
from csms_kit.protocol.validation import Quirk, Validation, ValidationPolicy
from csms_kit.registry import ConnectionRegistry, InMemoryRegistry, RegistryEvent
from csms_kit.routing import Router, after, on
from csms_kit.server import CsmsServer, serve
from csms_kit.session import BootInfo, SessionStats, StationSession
from csms_kit.transport import Transport, WebSocketTransport
from csms_kit.versions import OcppVersion

__version__ = "0.1.0.dev0"

__all__ = [
    "BootInfo",
    "CallError",
    "CallFailed",
    "CallTimeout",
    "ConnectionEnded",
    "ConnectionRegistry",
    "CsmsKitError",
    "CsmsServer",
    "DuplicateConnection",
    "ErrorCode",
    "Handshake",
    "Hooks",
    "InMemoryRegistry",
    "InvalidIdentity",
    "InvalidPayload",
    "InvalidResponse",
    "Limits",
    "OcppError",
    "OcppVersion",
    "Quirk",
    "RateLimit",
    "RegistryEvent",
    "Rejection",
    "Router",
    "SessionClosed",
    "SessionStats",
    "StationClient",
    "StationDisconnected",
    "StationNotConnected",
    "StationProtocolError",
    "StationSession",
    "Transport",
    "TransportClosed",
    "UsageError",
    "Validation",
    "ValidationPolicy",
    "WebSocketTransport",
    "__version__",
    "after",
    "connect_station",
    "current_time",
    "on",
    "serve",
]
