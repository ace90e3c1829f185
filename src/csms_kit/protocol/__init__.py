"""The sans-I/O OCPP-J core: frames, events, errors, validation and payload conversion.

Nothing in this package imports asyncio or websockets, reads a socket or starts a
task (see README.md here). :class:`Endpoint` holds the rules for one connection and
speaks in the events of :mod:`.events`; the other modules are its parts and can be
used on their own. Validation settings (``Validation``, ``ValidationPolicy``,
``Quirk``) are exported by :mod:`csms_kit` itself.
"""

from csms_kit.protocol.endpoint import Endpoint
from csms_kit.protocol.events import (
    Dropped,
    Event,
    IncomingCall,
    IncomingError,
    IncomingResult,
    IncomingResultError,
    IncomingSend,
    OutgoingCall,
    Reply,
    UnusableAnswer,
)
from csms_kit.protocol.frames import BadFrame, MessageType, parse
from csms_kit.protocol.jsontext import InvalidJson
from csms_kit.protocol.payloads import PayloadCodec, payload_codec
from csms_kit.protocol.schemas import SchemaViolation, compile_validator

__all__ = [
    "BadFrame",
    "Dropped",
    "Endpoint",
    "Event",
    "IncomingCall",
    "IncomingError",
    "IncomingResult",
    "IncomingResultError",
    "IncomingSend",
    "InvalidJson",
    "MessageType",
    "OutgoingCall",
    "PayloadCodec",
    "Reply",
    "SchemaViolation",
    "UnusableAnswer",
    "compile_validator",
    "parse",
    "payload_codec",
]
