"""csms_kit: build OCPP CSMS backends in Python.

The public API, exported here and only here::

    from csms_kit import StationSession, on, after

    class MySession(StationSession):
        @on("Heartbeat")
        def heartbeat(self, request):
            ...

Modules for those who extend csms_kit rather than use it: :mod:`csms_kit.protocol`
(the sans-I/O core), :mod:`csms_kit.connection` (the role-neutral connection),
:mod:`csms_kit.admission` and :mod:`csms_kit.transport` (for a new transport),
:mod:`csms_kit.hooks` (hook types), :mod:`csms_kit.exceptions` (the whole tree, with
what transports raise); test helpers in :mod:`csms_kit.testing`.
"""

from csms_kit.asgi import OcppEndpoint, ocpp_endpoint
from csms_kit.boot import BootInfo
from csms_kit.client import StationClient, connect_station
from csms_kit.clock import current_time
from csms_kit.connection import SessionStats
from csms_kit.error_codes import ErrorCode
from csms_kit.exceptions import (
    BrokerUnavailable,
    CallError,
    CallFailed,
    CallTimeout,
    ConnectFailed,
    ConnectionEnded,
    CsmsDisconnected,
    CsmsKitError,
    DuplicateConnection,
    InvalidPayload,
    InvalidResponse,
    PeerDisconnected,
    RemoteProtocolError,
    RpcError,
    SessionClosed,
    StationDisconnected,
    StationNotConnected,
    UsageError,
)
from csms_kit.hooks import Handshake, Rejection
from csms_kit.instruments import Instrument
from csms_kit.limits import Limits, RateLimit
from csms_kit.protocol.validation import Quirk, Validation, ValidationPolicy
from csms_kit.registry import (
    ConnectionRegistry,
    InMemoryRegistry,
    RegistryEvent,
    StationRecord,
)
from csms_kit.routing import Router, after, on
from csms_kit.server import CsmsServer, serve
from csms_kit.session import StationSession
from csms_kit.versions import OcppVersion

__version__ = "0.1.0.dev0"

__all__ = [
    "BootInfo",
    "BrokerUnavailable",
    "CallError",
    "CallFailed",
    "CallTimeout",
    "ConnectFailed",
    "ConnectionEnded",
    "ConnectionRegistry",
    "CsmsDisconnected",
    "CsmsKitError",
    "CsmsServer",
    "DuplicateConnection",
    "ErrorCode",
    "Handshake",
    "InMemoryRegistry",
    "Instrument",
    "InvalidPayload",
    "InvalidResponse",
    "Limits",
    "OcppEndpoint",
    "OcppVersion",
    "PeerDisconnected",
    "Quirk",
    "RateLimit",
    "RegistryEvent",
    "Rejection",
    "RemoteProtocolError",
    "Router",
    "RpcError",
    "SessionClosed",
    "SessionStats",
    "StationClient",
    "StationDisconnected",
    "StationNotConnected",
    "StationRecord",
    "StationSession",
    "UsageError",
    "Validation",
    "ValidationPolicy",
    "__version__",
    "after",
    "connect_station",
    "current_time",
    "ocpp_endpoint",
    "on",
    "serve",
]
