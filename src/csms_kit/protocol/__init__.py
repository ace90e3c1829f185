"""The sans-I/O OCPP-J core: frames, errors, validation and payload conversion.

Nothing in this package imports asyncio or websockets, reads a socket or starts a
task (see README.md here). :class:`Endpoint` holds the rules for one connection;
the other modules are its parts and can be used on their own.
"""

from csms_kit.protocol.endpoint import (
    Dropped,
    Endpoint,
    Event,
    IncomingCall,
    IncomingError,
    IncomingResult,
    IncomingResultError,
    IncomingSend,
    InvalidAnswer,
    OutgoingCall,
    Reply,
)
from csms_kit.protocol.frames import BadFrame, MessageType, parse
from csms_kit.protocol.jsontext import InvalidJson
from csms_kit.protocol.payloads import PayloadCodec, payload_codec
from csms_kit.protocol.schemas import SchemaViolation, compile_validator
from csms_kit.protocol.validation import Quirk, Validation, ValidationPolicy

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
    "InvalidAnswer",
    "InvalidJson",
    "MessageType",
    "OutgoingCall",
    "PayloadCodec",
    "Quirk",
    "Reply",
    "SchemaViolation",
    "Validation",
    "ValidationPolicy",
    "compile_validator",
    "parse",
    "payload_codec",
]
